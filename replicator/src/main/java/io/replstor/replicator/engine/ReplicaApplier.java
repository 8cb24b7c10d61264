package io.replstor.replicator.engine;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.replstor.replicator.authority.RoleView;
import io.replstor.replicator.net.DisconnectReason;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;

/**
 * The receiving side of a session's data stream: replicated writes, barriers and resync data from
 * the peer are applied to the local disk in arrival order by one thread per session (the applier),
 * and the peer's resync requests are served on it too, so that the event loops never wait for the
 * disk.
 *
 * <p>Terms: with an enforcing role authority, DATA and BARRIER are applied only if their term is the
 * current one and the sender is one of its Primaries, and RS_DATA only if its term is not older. A
 * refused frame is answered with NEG_ACK and a DISCONNECT saying why, and nothing after it is
 * applied: a deposed Primary cannot make this replica accept a write.
 *
 * <p>Nothing is applied before this side of the handshake has decided to stay connected (a split
 * brain must not let the peer's writes in): the first task waits for that decision.
 */
final class ReplicaApplier {
    private static final Logger LOG = LoggerFactory.getLogger(ReplicaApplier.class);
    /** Longest the applier waits for this node's role authority to learn a term a peer already uses. */
    private static final long TERM_CATCH_UP_MS = 10_000;

    private final Session s;
    private final Resource res;
    private final PeerLink link;
    private final ExecutorService thread;
    /** The Primary's writes not yet shown on every replica (applier thread; drained on the worker after it). */
    final UnconfirmedWrites unconfirmed = new UnconfirmedWrites();

    ReplicaApplier(Session s) {
        this.s = s;
        this.res = s.res;
        this.link = s.link;
        this.thread = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "apply-" + res.name() + "-" + link.name());
            t.setDaemon(true);
            return t;
        });
        thread.execute(s.handshake::awaitDecision);
    }

    /** Queues a task; false if the session is closing (the caller releases what it holds). */
    boolean execute(Runnable task) {
        try {
            thread.execute(task);
            return true;
        } catch (RejectedExecutionException e) {
            return false;
        }
    }

    /** No more tasks after those already queued. */
    void shutdown() {
        thread.shutdown();
    }

    /** Waits (bounded) for writes already handed to the applier, so a detach does not race them. */
    void awaitQueued() {
        try {
            if (!thread.awaitTermination(10, TimeUnit.SECONDS)) {
                LOG.warn("resource {}: writes from {} still being applied after 10 s", res.name(), link.name());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    void applyWrite(long term, long barrier, long seq, long off, int targets, ByteBuf payload, boolean fua) {
        if (s.failed()) {
            payload.release(); // after a refusal or a loss nothing more is applied; the Primary marks it
            return;
        }
        String refused = termCheck(term, true, "a write of " + payload.readableBytes() + " bytes at offset " + off);
        if (refused != null) {
            payload.release();
            refuseStale(refused, barrier, seq);
            return;
        }
        boolean ok = false;
        try {
            res.node.faults().beforeApply();
            holdDataTerm(term);
            if (off < 0 || off + payload.readableBytes() > res.sizeBytes()) {
                throw new IllegalArgumentException("write of " + payload.readableBytes() + " bytes at offset " + off
                        + " is outside the volume (" + res.sizeBytes() + " bytes)");
            }
            int len = payload.readableBytes();
            unconfirmed.add(off, len, targets);
            res.data.write(off, payload, fua);
            ok = true;
            res.sync.markForNonTargets(link, targets, off, len);
        } catch (Exception e) {
            LOG.error("resource {}: cannot apply a replicated write of {} bytes at offset {} from {}: {}", res.name(),
                    payload.readableBytes(), off, link.name(), e.getMessage());
        } finally {
            payload.release();
        }
        if (!s.failed()) {
            s.sendMeta(ok ? PeerLink.ENCODER.get().writeAck(s.meta.alloc(), barrier, seq)
                    : PeerLink.ENCODER.get().negAck(s.meta.alloc(), barrier, seq));
        }
    }

    void applyBarrier(long term, long barrier) {
        if (s.failed()) {
            return;
        }
        String refused = termCheck(term, true, "barrier " + barrier);
        if (refused != null) {
            refuseStale(refused, barrier, -1);
            return;
        }
        try {
            res.data.flush();
            unconfirmed.barrier(barrier);
            if (!s.failed()) {
                s.sendMeta(PeerLink.ENCODER.get().barrierAck(s.meta.alloc(), barrier, 0));
            }
        } catch (Exception e) {
            s.fail(ConnState.NETWORK_FAILURE, "cannot flush the disk for " + link.name() + "'s barrier: "
                    + e.getMessage());
        }
    }

    /**
     * PEER_ACK: the Primary reports which nodes hold every write before {@code barrier}; the writes kept
     * until then are marked here for their targets that do not, and forgotten.
     */
    void applyPeerAck(long barrier, int holders) {
        if (!s.failed()) {
            unconfirmed.settle(barrier, holders, (missing, off, len) -> res.sync.markMissing(link, missing, off, len));
        }
    }

    /** Sync source: read the chunk and send it, ordered with application writes by the range locks. */
    void serveResync(long off, long len) {
        if (s.failed()) {
            return;
        }
        if (off < 0 || len <= 0 || len > res.node.maxPayloadBytes() || off + len > res.sizeBytes()) {
            s.fail(ConnState.PROTOCOL_ERROR, link.name() + " asked for resync data outside the volume: offset " + off
                    + ", length " + len);
            return;
        }
        ByteBuf buf = s.data.alloc().directBuffer((int) len);
        RangeLocks ranges = res.writes.ranges;
        ranges.lock(off, len);
        try {
            res.data.read(off, (int) len, buf);
            res.md.bitmap().clear(s.slot, off, len);
            ByteBuf head = PeerLink.ENCODER.get().rsDataHead(s.data.alloc(), res.view().term(), off, buf);
            ByteBuf frame = Unpooled.wrappedBuffer(head, buf);
            buf = null;
            s.data.writeAndFlush(frame, s.data.voidPromise());
            link.resyncSentBytes.addAndGet(len);
        } catch (Exception e) {
            s.fail(ConnState.NETWORK_FAILURE, "cannot read resync data at offset " + off + ": " + e.getMessage());
        } finally {
            ranges.unlock(off, len);
            if (buf != null) {
                buf.release();
            }
        }
    }

    void applyResync(long term, long off, ByteBuf payload) {
        int len = payload.readableBytes();
        if (s.failed()) {
            payload.release();
            return;
        }
        String refused = termCheck(term, false, "resync data at offset " + off);
        if (refused != null) {
            payload.release();
            refuseStale(refused, 0, -1);
            return;
        }
        try {
            if (off < 0 || off + len > res.sizeBytes()) {
                throw new IllegalArgumentException("resync data outside the volume at offset " + off);
            }
            res.data.write(off, payload, false);
            res.md.bitmap().clear(s.slot, off, len);
            link.resyncReceivedBytes.addAndGet(len);
        } catch (Exception e) {
            s.fail(ConnState.PROTOCOL_ERROR, "cannot write resync data at offset " + off + " from " + link.name()
                    + ": " + e.getMessage());
            return;
        } finally {
            payload.release();
        }
        s.resync.chunkArrived();
    }

    /**
     * Whether data stamped {@code term} by this session's peer may be applied: always without an
     * enforcing authority; otherwise the term must be the current one (waiting a bounded time for this
     * node's store to learn a newer term the peer already uses) and, for {@code primaryOnly} frames, the
     * peer must be one of its Primaries.
     *
     * @return null to apply it, else why it is refused
     */
    private String termCheck(long term, boolean primaryOnly, String what) {
        if (!res.authority.enforcing()) {
            return null;
        }
        RoleView v = res.view();
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(TERM_CATCH_UP_MS);
        while (term > v.term() && !s.failed() && System.nanoTime() < deadline) {
            sleepQuietly(5);
            v = res.view();
        }
        String from = " from " + link.name() + " stamped term " + term;
        if (term > v.term()) {
            return what + from + ": this node's cluster store still says term " + v.term() + " after "
                    + TERM_CATCH_UP_MS + " ms";
        }
        if (term < v.term()) {
            return what + from + ": the current term of " + res.name() + " is " + v.term() + " (Primaries: "
                    + RoleView.names(v.primaries()) + "; " + v.lastChange() + ")";
        }
        if (primaryOnly && !v.isPrimary(link.name())) {
            return what + from + ": " + link.name() + " is not a Primary of term " + v.term() + " (Primaries: "
                    + RoleView.names(v.primaries()) + ")";
        }
        return null;
    }

    /** Refuses a frame of a stale term: NEG_ACK for a write, then DISCONNECT saying why; logged on both nodes. */
    private void refuseStale(String why, long barrier, long seq) {
        if (!s.failed()) {
            LOG.error("resource {}: refused {}", res.name(), why);
            if (seq >= 0) {
                s.sendMeta(PeerLink.ENCODER.get().negAck(s.meta.alloc(), barrier, seq));
            }
            String error = "refused " + why;
            res.post(() -> link.setLastError(error));
            s.disconnect(DisconnectReason.STALE_TERM, res.self.name() + " refused " + why, ConnState.UNCONNECTED, error);
        }
    }

    /**
     * Before the first write of a newer term lands, the disk records that it holds data of that term
     * (the metadata commit is the one state change the applier makes itself: it must precede the write).
     */
    private void holdDataTerm(long term) throws IOException {
        if (res.authority.enforcing() && term > res.md.state().dataTerm()) {
            res.md.commit(st -> st.withDataTerm(term));
        }
    }

    private static void sleepQuietly(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
