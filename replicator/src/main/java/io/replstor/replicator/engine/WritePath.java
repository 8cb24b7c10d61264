package io.replstor.replicator.engine;

import io.netty.buffer.ByteBuf;
import io.replstor.common.io.BlockDevice;
import io.replstor.common.io.StorageException;
import io.replstor.replicator.DiskState;
import io.replstor.replicator.Role;
import io.replstor.replicator.config.ResourceConfig;
import io.replstor.replicator.meta.Metadata;

import java.io.IOException;
import java.util.concurrent.TimeUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A Primary's I/O path: reads, application writes and FLUSH, on the callers' threads (the NBD
 * server's I/O workers).
 *
 * <p>A write: the activity log makes its extent hot; under the join lock (read) and the range's
 * stripe lock it is queued to every session that replicates (and marked in the bitmap of every peer
 * that does not), then written locally; it completes when every peer has confirmed it as its protocol
 * says, or once a silent member of the in-sync set has been removed from it (rule 2 of DESIGN §5,
 * {@link InSyncGate}). A FLUSH is a barrier on every connected peer plus the local fdatasync.
 *
 * <p>Only an UpToDate Primary whose lease in the cluster store is valid serves I/O; without the lease
 * it waits ({@code on-no-quorum suspend-io}) or fails ({@code io-error}).
 */
final class WritePath {
    /** Longest an application write waits for its peers; ko-count and timeouts end it much sooner. */
    static final long WRITE_WAIT_MAX_NANOS = TimeUnit.MINUTES.toNanos(10);

    private final Resource res;
    /** Orders a resync chunk and an application write to the same range. */
    final RangeLocks ranges = new RangeLocks();
    private final AtomicLong sequence = new AtomicLong();
    /** The number of the next write barrier (DRBD's epoch): writes between two barriers may be reordered. */
    final AtomicLong barrier = new AtomicLong(1);
    private final AtomicInteger inFlight = new AtomicInteger();
    /** Peer acknowledgements of the barriers this node sends as Primary. */
    final PeerAckTracker peerAcks;
    /** Writes queued to peers since the last barrier: the periodic barrier is sent only after some. */
    private final AtomicLong writesSinceBarrier = new AtomicLong();
    /** A barrier asked for by {@link #barrierSoon} is on its way to the worker. */
    private final AtomicBoolean barrierQueued = new AtomicBoolean();

    WritePath(Resource res) {
        this.res = res;
        this.peerAcks = new PeerAckTracker(res.self.id());
    }

    private void beginIo(String what, long offset) throws StorageException {
        inFlight.incrementAndGet();
        Role role = res.role();
        if (role != Role.PRIMARY || res.disk != DiskState.UP_TO_DATE || !res.up) {
            inFlight.decrementAndGet();
            throw new StorageException(StorageException.Kind.IO, "resource " + res.name() + " on " + res.self.name()
                    + " refuses the " + what + " at offset " + offset + ": it is " + role.drbdName() + " with disk "
                    + res.disk.drbdName() + (res.up ? "" : " (down)"));
        }
        if (!res.authority.leaseValid() && !res.roles.forcedWithoutQuorum()) {
            try {
                awaitLease(what, offset);
            } catch (StorageException e) {
                inFlight.decrementAndGet();
                throw e;
            }
        }
    }

    /**
     * This Primary's liveness lease lapsed (it cannot reach a majority of the cluster store): the cluster
     * may depose it at any moment, so it serves nothing until the lease is renewed. With
     * {@code on-no-quorum suspend-io} the request waits; with {@code io-error} it fails.
     */
    private void awaitLease(String what, long offset) throws StorageException {
        String why = "resource " + res.name() + " on " + res.self.name() + " cannot serve the " + what + " at offset "
                + offset + ": its lease in the cluster store lapsed (" + res.authority.quorum().why() + ")";
        if (res.cfg.onNoQuorum() == ResourceConfig.OnNoQuorum.IO_ERROR) {
            throw new StorageException(StorageException.Kind.IO, why + "; on-no-quorum io-error");
        }
        long deadline = System.nanoTime() + WRITE_WAIT_MAX_NANOS;
        while (!res.authority.leaseValid()) {
            if (res.role() != Role.PRIMARY || res.stopping() || System.nanoTime() > deadline) {
                throw new StorageException(StorageException.Kind.IO, why + (res.role() != Role.PRIMARY
                        ? "; meanwhile it stopped being Primary" : res.stopping() ? "; the node is stopping"
                        : "; suspended for too long"));
            }
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new StorageException(StorageException.Kind.IO, "interrupted", e);
            }
        }
    }

    private void endIo() {
        inFlight.decrementAndGet();
    }

    /**
     * Waits (bounded) until no request is in flight: a demotion has already made new requests fail.
     * Called on the worker.
     */
    void awaitIdle(long maxNanos) {
        long deadline = System.nanoTime() + maxNanos;
        while (inFlight.get() > 0 && System.nanoTime() < deadline) {
            try {
                Thread.sleep(1);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    void read(long offset, int length, ByteBuf dst) throws StorageException {
        beginIo("read", offset);
        try {
            res.data.read(offset, length, dst);
        } finally {
            endIo();
        }
    }

    /** An application write: activity log, local disk and every connected peer, as the protocol says. */
    void write(long offset, ByteBuf src, boolean fua) throws StorageException {
        beginIo("write", offset);
        try {
            int len = src.readableBytes();
            Metadata m = res.md;
            beginActivity(m, offset, len);
            try {
                awaitPeers(issueWrite(m, offset, src, fua), "write", offset);
            } finally {
                m.activityLog().endWrite(offset, len);
            }
        } finally {
            endIo();
        }
    }

    /**
     * The same write without a waiting thread: the local write happens in the call, and {@code done}
     * runs when every connected peer has confirmed it (on the thread that received the last ack), or
     * with the error that keeps it from being acknowledged.
     */
    void writeAsync(long offset, ByteBuf src, boolean fua, BlockDevice.WriteCompletion done) throws StorageException {
        beginIo("write", offset);
        int len = src.readableBytes();
        Metadata m = res.md;
        WriteOp op;
        try {
            beginActivity(m, offset, len);
            try {
                op = issueWrite(m, offset, src, fua);
            } catch (StorageException | RuntimeException e) {
                m.activityLog().endWrite(offset, len);
                throw e;
            }
        } catch (StorageException | RuntimeException e) {
            endIo();
            throw e;
        }
        op.whenDone(error -> {
            m.activityLog().endWrite(offset, len);
            endIo();
            done.completed(error);
        });
    }

    private void beginActivity(Metadata m, long offset, int len) throws StorageException {
        try {
            m.activityLog().beginWrite(offset, len);
        } catch (IOException e) {
            throw new StorageException(StorageException.Kind.IO, "resource " + res.name() + ": activity log at offset "
                    + offset + ": " + e.getMessage(), e);
        }
    }

    /**
     * Queues the write to the peers (or marks it for those not connected) and writes it locally. A
     * member of the in-sync set that is not connected must first be removed from it: the write then
     * waits for that commit as well (rule 2 of DESIGN §5).
     */
    private WriteOp issueWrite(Metadata m, long offset, ByteBuf src, boolean fua) throws StorageException {
        int len = src.readableBytes();
        long seq = sequence.incrementAndGet();
        long term = res.writeTerm();
        var links = res.links;
        WriteOp op;
        ranges.lock(offset, len);
        try {
            op = queueWrite(m, links, seq, term, offset, src, fua);
            // the local write needs only the range's stripes (ordered with resync reads), not the join lock
            res.data.write(offset, src, fua);
            return op;
        } finally {
            ranges.unlock(offset, len);
        }
    }

    /** The peers' part of a write, under the join lock (read): every write is on one side of a cut or barrier. */
    private WriteOp queueWrite(Metadata m, List<PeerLink> links, long seq, long term, long offset, ByteBuf src,
                               boolean fua) {
        int len = src.readableBytes();
        res.joinLock.readLock().lock();
        try {
            // read once per peer: a joining peer's handshake may decide meanwhile
            Session[] sessions = new Session[links.size()];
            boolean[] waits = new boolean[sessions.length];
            int n = 0;
            for (int i = 0; i < sessions.length; i++) {
                sessions[i] = links.get(i).replicating();
                waits[i] = sessions[i] != null && sessions[i].confirmsWrites();
                n += waits[i] ? 1 : 0;
            }
            WriteOp op = new WriteOp(n);
            long b = barrier.get();
            int targets = 1 << res.self.id();
            for (int i = 0; i < sessions.length; i++) {
                if (sessions[i] != null) {
                    targets |= 1 << links.get(i).peer.id();
                }
            }
            for (int i = 0; i < sessions.length; i++) {
                PeerLink l = links.get(i);
                Session s = sessions[i];
                if (s != null) {
                    s.sendWrite(waits[i] ? op : null, seq, term, b, offset, targets, src, fua);
                } else {
                    int slot = m.state().slotOf(l.peer.id());
                    if (slot >= 0) {
                        m.bitmap().set(slot, offset, len);
                    }
                    if (res.gate.guards(l.peer.name())) {
                        res.gate.attach(op, l.peer.name(), l.peer.name() + " is not connected");
                    }
                }
            }
            writesSinceBarrier.incrementAndGet();
            return op;
        } finally {
            res.joinLock.readLock().unlock();
        }
    }

    /** FLUSH: the local disk and, through a barrier, every connected peer's. */
    void flush() throws StorageException {
        if (res.role() != Role.PRIMARY && res.roles.clients() == 0) {
            return; // nothing was written through this node (the NBD server flushes every export when it stops)
        }
        beginIo("flush", 0);
        try {
            WriteOp op = sendBarrier(true, true, res.writeTerm());
            res.data.flush();
            awaitPeers(op, "flush", 0);
        } finally {
            endIo();
        }
    }

    /**
     * Sends the next barrier to every replicating session at once, under the join lock (write): every
     * write is then before it in every peer's stream, or after it in every one, which peer
     * acknowledgements rely on ({@link PeerAckTracker}).
     *
     * @param wait      whether the returned operation waits for the connected peers; else nothing waits
     * @param gateAbsent whether it also waits, for each in-sync peer that is not connected, for its
     *                  committed removal (a FLUSH: what it made durable must be on every in-sync replica)
     * @return the operation that completes when the peers have flushed everything before the barrier
     */
    private WriteOp sendBarrier(boolean wait, boolean gateAbsent, long term) {
        res.joinLock.writeLock().lock();
        try {
            List<Session> to = new ArrayList<>();
            List<Boolean> waits = new ArrayList<>();
            int n = 0;
            for (PeerLink l : res.links) {
                Session s = l.replicating();
                if (s != null) {
                    boolean w = wait && s.confirmsWrites();
                    to.add(s);
                    waits.add(w);
                    n += w ? 1 : 0;
                }
            }
            WriteOp op = new WriteOp(n);
            long b = barrier.getAndIncrement();
            writesSinceBarrier.set(0);
            peerAcks.sent(b, to);
            for (int i = 0; i < to.size(); i++) {
                to.get(i).sendBarrier(waits.get(i) ? op : null, term, b);
            }
            if (wait && gateAbsent) {
                for (PeerLink l : res.links) {
                    if (l.replicating() == null && res.gate.guards(l.peer.name())) {
                        res.gate.attach(op, l.peer.name(), l.peer.name() + " is not connected");
                    }
                }
            }
            return op;
        } finally {
            res.joinLock.writeLock().unlock();
        }
    }

    /**
     * Every {@code peer-ack-delay} (worker): a barrier if writes went to the peers since the last one, so
     * that the Secondaries learn soon which writes every replica holds (and a peer's page cache is
     * flushed even when the application never sends FLUSH).
     */
    void periodicBarrier() {
        if (res.role() == Role.PRIMARY && res.writeTerm() > 0 && writesSinceBarrier.get() > 0) {
            sendBarrier(false, false, res.writeTerm());
        }
    }

    /** A peer has many writes waiting for a flush: a barrier, sent from the worker (any thread). */
    void barrierSoon() {
        if (barrierQueued.compareAndSet(false, true)) {
            res.post(() -> {
                barrierQueued.set(false);
                if (res.role() == Role.PRIMARY && res.writeTerm() > 0) {
                    sendBarrier(false, false, res.writeTerm());
                }
            });
        }
    }

    /**
     * The last barrier of a Primary that demotes (worker, before its write term is dropped): the peers
     * learn that its last writes are on every replica instead of keeping them as unconfirmed. Waits,
     * at most {@code maxNanos}, until every connected peer has acknowledged it: only then may the store
     * commit the demotion, since a peer that learns of the new term first refuses a barrier stamped
     * with the old one (and drops the connection, which then needs a resync).
     *
     * @return true if every connected peer acknowledged it in time (or there was nothing to send)
     */
    boolean finalBarrier(long term, long maxNanos) {
        if (writesSinceBarrier.get() == 0 && peerAcks.pending() == 0) {
            return true;
        }
        WriteOp op = sendBarrier(true, false, term);
        try {
            return op.await(maxNanos);
        } catch (StorageException e) {
            return false; // the peer failed meanwhile: its session restarts and resyncs what it lacks
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    private void awaitPeers(WriteOp op, String what, long offset) throws StorageException {
        try {
            if (!op.await(WRITE_WAIT_MAX_NANOS)) {
                throw new StorageException(StorageException.Kind.IO, "resource " + res.name() + ": the " + what
                        + " at offset " + offset + " was not confirmed by the peers in time");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new StorageException(StorageException.Kind.IO, "interrupted", e);
        }
    }
}
