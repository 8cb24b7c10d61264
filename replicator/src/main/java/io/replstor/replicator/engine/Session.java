package io.replstor.replicator.engine;

import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.socket.DuplexChannel;
import io.netty.util.ReferenceCountUtil;
import io.replstor.replicator.DiskState;
import io.replstor.replicator.Role;
import io.replstor.replicator.config.ReplicationProtocol;
import io.replstor.replicator.net.DisconnectReason;
import io.replstor.replicator.net.PeerFrame;
import io.replstor.replicator.net.PeerFrameType;
import io.replstor.replicator.sync.GenerationIds;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * One established connection with a peer: a data channel (replicated writes, resync, state,
 * bitmaps) and a meta channel (acks, barrier acks, pings), so acks never wait behind bulk data
 * (DRBD's meta socket). This class sends frames and routes the frames that arrive; the parts:
 * <ul>
 *   <li>{@link SessionHandshake}: the cut, the sync decision, the bitmap exchange;</li>
 *   <li>{@link TransferLog}: what the peer has not yet confirmed (this node as Primary);</li>
 *   <li>{@link ReplicaApplier}: the peer's writes, barriers and resync data applied in order;</li>
 *   <li>{@link ResyncPuller}: this node as resync target, pulling chunks within c-max-rate;</li>
 *   <li>{@link Heartbeat}: pings and the timers that drop a silent or slow peer.</li>
 * </ul>
 *
 * <p>Threads: frames arrive on the channels' event loops. Acks and pings are handled there (they
 * settle writes and liveness, not resource state); data goes to the applier; everything that changes
 * the resource's or the link's state (the peer's UUIDS and STATE, a DISCONNECT's verdict) is posted
 * to the resource's worker.
 */
final class Session {
    private static final Logger LOG = LoggerFactory.getLogger(Session.class);
    private static final int BITMAP_RUNS_PER_FRAME = 4096;
    /** How long a channel that sent DISCONNECT stays half-closed before it closes anyway. */
    private static final int LINGER_SECONDS = 2;

    final PeerLink link;
    final Resource res;
    final Channel data;
    final Channel meta;
    final SessionHandshake handshake;
    final TransferLog transfer;
    final ReplicaApplier applier;
    final ResyncPuller resync;
    final Heartbeat heartbeat;
    private final AtomicBoolean failed = new AtomicBoolean();
    private final AtomicBoolean lostHandled = new AtomicBoolean();

    /** Application writes go to this session (set and cleared under the resource's join lock). */
    volatile boolean replicating;
    volatile long establishedAtNanos;
    volatile ConnState failState;
    volatile String failMessage;
    /** This node's bitmap slot for the peer (set at the handshake's cut). */
    volatile int slot = -1;
    /** The peer's generation identifiers, from its UUIDS (worker). */
    GenerationIds peerIds;
    /** The peer's data term from its UUIDS: a sync target adopts its source's. */
    volatile long peerDataTerm;
    /** The flags of the peer's handshake UUIDS (worker). */
    long peerUuidFlags;

    /** Flyweights for received frames, one per channel (each is read on its own event loop). */
    private final PeerFrame dataFrame = new PeerFrame();
    private final PeerFrame metaFrame = new PeerFrame();

    /** What the handshake needs from the peer's UUIDS frame, copied off the buffer. */
    record PeerFrameCopy(GenerationIds ids, long flags, int followers) {
    }

    Session(PeerLink link, Channel data, Channel meta) {
        this.link = link;
        this.res = link.res;
        this.data = data;
        this.meta = meta;
        this.handshake = new SessionHandshake(this);
        this.transfer = new TransferLog(this);
        this.resync = new ResyncPuller(this);
        this.heartbeat = new Heartbeat(this);
        // the peer replicates its writes from its side of the cut on; none is applied before this side has
        // decided to stay (a split brain must not let them in)
        this.applier = new ReplicaApplier(this);
    }

    /**
     * Whether writes wait for this peer's confirmation: once its handshake has decided to stay, or at
     * once if it is in the in-sync set (rule 2). A peer still joining gets every write after the cut, but a
     * write does not wait for it: if the join fails, the write is marked out of sync for it.
     */
    boolean confirmsWrites() {
        return handshake.done() || res.gate.guards(link.name());
    }

    boolean markLostHandled() {
        return lostHandled.compareAndSet(false, true);
    }

    // ---- sending

    void sendUuids(GenerationIds ids, long flags) {
        sendUuids(ids, flags, 0);
    }

    /** @param followers with {@link PeerFrame#UUID_FLAG_ADOPT}: node-id bits of the nodes the new generation reaches */
    void sendUuids(GenerationIds ids, long flags, int followers) {
        List<Long> h = ids.history();
        long[] history = new long[h.size()];
        for (int i = 0; i < history.length; i++) {
            history[i] = h.get(i);
        }
        long dataTerm = res.md.state().dataTerm();
        data.writeAndFlush(PeerLink.ENCODER.get().uuids(data.alloc(), ids.current(), ids.bitmap(), flags, dataTerm,
                followers, history));
    }

    void sendState() {
        sendState(0);
    }

    void sendState(int extraFlags) {
        var md = res.md;
        boolean unconfirmed = md != null && md.state().has(io.replstor.replicator.meta.VolumeFlag.UNCONFIRMED_WRITES);
        int flags = (link.pausedByMe ? PeerFrame.STATE_FLAG_SYNC_PAUSED : 0)
                | (unconfirmed ? PeerFrame.STATE_FLAG_UNCONFIRMED : 0) | extraFlags;
        data.writeAndFlush(PeerLink.ENCODER.get().state(data.alloc(), res.role(), res.disk, flags,
                res.view().term()));
    }

    /**
     * Tells the peer why this side ends the session (DISCONNECT {@code why, message}), then ends it as
     * {@link #fail} does, in {@code state} with {@code failMessage}. DISCONNECT goes on both channels,
     * each then half-closed: the peer reads it before the end of whichever channel it sees end first
     * (sent on one channel only, the other's end could reach the peer first and hide the verdict), and
     * the channel closes once the peer has closed its side, or after {@link #LINGER_SECONDS} (closing
     * outright while the peer's frames still arrive makes the kernel answer with RST, which can discard
     * DISCONNECT before the peer reads it).
     */
    void disconnect(DisconnectReason why, String message, ConnState state, String failMessage) {
        if (!failed.compareAndSet(false, true)) {
            return;
        }
        failState = state;
        this.failMessage = failMessage;
        for (Channel c : new Channel[] {data, meta}) {
            if (!c.isActive()) {
                c.close();
                continue;
            }
            c.writeAndFlush(PeerLink.ENCODER.get().disconnect(c.alloc(), why, message)).addListener(f -> {
                if (f.isSuccess() && c instanceof DuplexChannel d) {
                    d.shutdownOutput();
                    try {
                        c.eventLoop().schedule(() -> c.close(), LINGER_SECONDS, TimeUnit.SECONDS);
                    } catch (java.util.concurrent.RejectedExecutionException e) {
                        c.close(); // the event loop is shutting down
                    }
                } else {
                    c.close();
                }
            });
        }
        ended();
    }

    /**
     * Queues an application write; the caller holds the join lock (read) and the range's stripes.
     * {@code payload} is not consumed.
     *
     * @param op      what waits for the peer's confirmation, or null (a peer still joining)
     * @param targets node-id bits of every node the write goes to (a replica marks it for the others)
     */
    void sendWrite(WriteOp op, long seq, long term, long barrier, long offset, int targets, ByteBuf payload,
                   boolean fua) {
        int len = payload.readableBytes();
        TransferLog.Pending p = transfer.sent(seq, offset, len, op);
        if (failed.get()) {
            return; // the loss handler (behind our join lock) confirms it
        }
        ChannelFuture f = PeerLink.ENCODER.get().writeData(data, data.alloc(), term, barrier, seq, offset, targets,
                fua, payload.retainedDuplicate());
        data.flush();
        link.sentBytes.addAndGet(len);
        if (link.protocol() == ReplicationProtocol.A) {
            f.addListener(done -> {
                if (done.isSuccess()) {
                    p.confirm();
                }
            });
        }
    }

    /**
     * Queues barrier {@code barrier}; {@code op} (null: nobody waits) completes when the peer has flushed
     * everything before it.
     */
    void sendBarrier(WriteOp op, long term, long barrier) {
        transfer.barrierSent(barrier, op);
        if (failed.get()) {
            return;
        }
        data.writeAndFlush(PeerLink.ENCODER.get().barrier(data.alloc(), term, barrier));
    }

    /** Tells the peer which nodes hold every write before {@code barrier} ({@link PeerAckTracker}). */
    void sendPeerAck(long barrier, int holders) {
        if (!failed.get()) {
            data.writeAndFlush(PeerLink.ENCODER.get().peerAck(data.alloc(), barrier, holders), data.voidPromise());
        }
    }

    /** This side's bitmap for the peer, as runs, then the end marker (the handshake's exchange). */
    void sendBitmap() {
        var bm = res.md.bitmap();
        long bits = bm.bits();
        long g = res.granularity();
        int[] runs = new int[BITMAP_RUNS_PER_FRAME];
        long[] pos = {0};
        long[] frameStart = {0};
        int[] n = {0};
        bm.forEachDirtyRange(slot, (off, len) -> {
            long start = off / g;
            long end = start + len / g;
            if (n[0] + 2 > runs.length) {
                data.write(PeerLink.ENCODER.get().bitmap(data.alloc(), frameStart[0], runs, n[0]));
                frameStart[0] = pos[0];
                n[0] = 0;
            }
            runs[n[0]++] = (int) Math.min(Integer.MAX_VALUE, start - pos[0]);
            runs[n[0]++] = (int) Math.min(Integer.MAX_VALUE, end - start);
            pos[0] = end;
            return true;
        });
        if (n[0] > 0) {
            data.write(PeerLink.ENCODER.get().bitmap(data.alloc(), frameStart[0], runs, n[0]));
        }
        data.writeAndFlush(PeerLink.ENCODER.get().bitmap(data.alloc(), bits, runs, 0));
    }

    /** Resync requests of a target, each {offset, length} in bytes. */
    void sendResyncRequests(List<long[]> requests) {
        for (long[] q : requests) {
            data.write(PeerLink.ENCODER.get().rsRequest(data.alloc(), q[0], q[1]), data.voidPromise());
        }
        if (!requests.isEmpty()) {
            data.flush();
        }
    }

    void sendMeta(ByteBuf frame) {
        meta.writeAndFlush(frame, meta.voidPromise());
    }

    // ---- receiving (event loop)

    void onFrame(boolean onData, ByteBuf buf) {
        PeerFrame f = (onData ? dataFrame : metaFrame).wrap(buf);
        PeerFrameType t = f.type();
        boolean handedOff = false;
        try {
            if (!onData) {
                heartbeat.heard();
            }
            switch (t) {
                case UUIDS -> onUuids(f);
                case STATE -> onState(f);
                case BITMAP -> onBitmap(f);
                case DATA -> {
                    handedOff = true;
                    onData(f, buf);
                }
                case BARRIER -> {
                    long term = f.term();
                    long barrier = f.barrier();
                    applier.execute(() -> applier.applyBarrier(term, barrier));
                }
                case RS_REQUEST -> {
                    long off = f.offset();
                    long len = f.requestLength();
                    applier.execute(() -> applier.serveResync(off, len));
                }
                case RS_DATA -> {
                    handedOff = true;
                    long term = f.term();
                    long off = f.offset();
                    ByteBuf payload = buf.retainedSlice(f.payloadIndex(), f.payloadLength());
                    buf.release();
                    if (!applier.execute(() -> applier.applyResync(term, off, payload))) {
                        payload.release();
                    }
                }
                case RECV_ACK -> {
                    if (link.protocol() == ReplicationProtocol.B) {
                        transfer.received(f.sequence());
                    }
                }
                case WRITE_ACK -> {
                    if (transfer.written(f.sequence())) {
                        // many writes wait for a flush on the peer and no application FLUSH came: a barrier
                        res.writes.barrierSoon();
                    }
                }
                case NEG_ACK -> {
                    TransferLog.Pending p = transfer.refused(f.sequence());
                    if (p != null) {
                        LOG.warn("resource {}: {} did not write {} bytes at offset {}; marked out of sync",
                                res.name(), link.name(), p.length, p.offset);
                        res.md.bitmap().set(slot, p.offset, p.length);
                        transfer.settleUnconfirmed(p, link.name() + " did not write a replicated write (NEG_ACK)");
                    }
                }
                case BARRIER_ACK -> {
                    long b = f.barrier();
                    transfer.barrierAcked(b);
                    res.writes.peerAcks.acked(this, b);
                }
                case PEER_ACK -> {
                    long b = f.barrier();
                    int holders = f.holders();
                    applier.execute(() -> applier.applyPeerAck(b, holders));
                }
                case PING -> sendMeta(PeerLink.ENCODER.get().pingAck(meta.alloc()));
                case PING_ACK -> heartbeat.pingAnswered();
                case DISCONNECT -> onDisconnect(f);
                default -> fail(ConnState.PROTOCOL_ERROR, "unexpected " + t + " frame from " + link.name());
            }
        } catch (RuntimeException e) {
            LOG.warn("resource {}: bad frame {} from {}", res.name(), t, link.name(), e);
            fail(ConnState.PROTOCOL_ERROR, "bad " + t + " frame from " + link.name() + ": " + e.getMessage());
        } finally {
            if (!handedOff) {
                ReferenceCountUtil.release(buf);
            }
        }
    }

    private void onUuids(PeerFrame f) {
        PeerFrameCopy copy = new PeerFrameCopy(f.generationIds(), f.uuidFlags(), f.followers());
        long dataTerm = f.dataTerm();
        res.post(() -> {
            peerDataTerm = dataTerm;
            if (!handshake.done()) {
                handshake.peerUuids.complete(copy);
            } else if ((copy.flags() & PeerFrame.UUID_FLAG_ADOPT) != 0) {
                res.sync.adoptPeerUuids(link, this, copy);
            } else if ((copy.flags() & PeerFrame.UUID_FLAG_RESYNCED) != 0) {
                res.sync.peerResynced(link, this, copy);
            }
        });
    }

    private void onState(PeerFrame f) {
        Role role = f.role();
        DiskState disk = f.diskState();
        int flags = f.stateFlags();
        res.post(() -> peerStateChanged(role, disk, flags));
    }

    /** The peer's STATE (worker): its role, disk and pause flag, and what follows from them. */
    private void peerStateChanged(Role role, DiskState disk, int flags) {
        if (failed()) {
            return;
        }
        DiskState before = link.peerDisk;
        Role roleBefore = link.peerRole;
        link.peerRole = role;
        link.peerDisk = disk;
        boolean pausedBefore = link.pausedByPeer;
        link.pausedByPeer = (flags & PeerFrame.STATE_FLAG_SYNC_PAUSED) != 0;
        link.peerUnconfirmed = (flags & PeerFrame.STATE_FLAG_UNCONFIRMED) != 0;
        handshake.peerState.complete(flags);
        if (before != disk || roleBefore != role) {
            res.statusView.emitConnection(link, "change");
            res.statusView.emitPeer(link, "change");
        }
        if ((flags & PeerFrame.STATE_FLAG_INVALIDATE_REQUEST) != 0) {
            res.sync.invalidateRequestedBy(link);
        }
        if (pausedBefore != link.pausedByPeer) {
            pauseChanged();
        }
        ReplState r = link.repl;
        if ((r == ReplState.SYNC_SOURCE || r == ReplState.PAUSED_SYNC_S) && disk == DiskState.UP_TO_DATE) {
            res.sync.syncSourceFinished(link, this);
        }
    }

    /** Pause flags changed on either side (worker). */
    void pauseChanged() {
        ReplState r = link.repl;
        boolean p = link.paused();
        if (r == ReplState.SYNC_SOURCE && p) {
            link.setRepl(ReplState.PAUSED_SYNC_S);
        } else if (r == ReplState.PAUSED_SYNC_S && !p) {
            link.setRepl(ReplState.SYNC_SOURCE);
        } else if (r == ReplState.SYNC_TARGET && p) {
            link.setRepl(ReplState.PAUSED_SYNC_T);
        } else if (r == ReplState.PAUSED_SYNC_T && !p) {
            link.setRepl(ReplState.SYNC_TARGET);
            resync.pull();
        }
    }

    /** The peer's bitmap for this node, merged into this node's bitmap for it (the handshake's union). */
    private void onBitmap(PeerFrame f) {
        long pos = f.bitOffset();
        int runs = f.runCount();
        var bm = res.md.bitmap();
        if (runs == 0) {
            handshake.peerBitmap.complete(true); // the end marker
            return;
        }
        long limit = res.sync.limitBits();
        for (int i = 0; i < runs; i++) {
            long len = f.run(i);
            if (i % 2 == 1 && len > 0) {
                long end = Math.min(limit, pos + len);
                if (pos < end) {
                    bm.setBits(slot, pos, end);
                }
            }
            pos += len;
        }
    }

    private void onData(PeerFrame f, ByteBuf buf) {
        long term = f.term();
        long barrier = f.barrier();
        long seq = f.sequence();
        int targets = f.targets();
        long off = f.offset();
        boolean fua = f.fua();
        int len = f.payloadLength();
        ByteBuf payload = buf.retainedSlice(f.payloadIndex(), len);
        buf.release();
        link.receivedBytes.addAndGet(len);
        if (link.protocol() == ReplicationProtocol.B) {
            sendMeta(PeerLink.ENCODER.get().recvAck(meta.alloc(), barrier, seq));
        }
        if (!applier.execute(() -> applier.applyWrite(term, barrier, seq, off, targets, payload, fua))) {
            payload.release(); // the session is closing; the primary marks the write out of sync
        }
    }

    private void onDisconnect(PeerFrame f) {
        if (failed()) {
            return; // the peer sends it on both channels; the first one counts
        }
        String message = f.message();
        String msg = link.peer.name() + " disconnected: " + message;
        DisconnectReason r = f.disconnectReason();
        boolean verdict = r == DisconnectReason.SPLIT_BRAIN || r == DisconnectReason.UNRELATED_DATA;
        if (r == DisconnectReason.STALE_TERM) {
            LOG.warn("resource {}: {} refused this node's data: {}", res.name(), link.name(), message);
        }
        if (verdict || r == DisconnectReason.STALE_TERM) {
            // before the loss is handled (also on the worker): the link keeps the peer's reason
            res.post(() -> {
                link.setLastError(message);
                if (verdict) {
                    link.wanted = false;
                }
            });
        }
        LOG.info("resource {}: {}", res.name(), msg);
        fail(verdict ? ConnState.STANDALONE : ConnState.UNCONNECTED, msg);
    }

    // ---- failure

    /** Closes the session (any thread, idempotent); the resource worker then runs {@link PeerLink#lost}. */
    void fail(ConnState state, String message) {
        if (!failed.compareAndSet(false, true)) {
            return;
        }
        failState = state;
        failMessage = message;
        data.close();
        meta.close();
        ended();
    }

    /** After the channels were closed (or are closing): the log, and the loss handled on the worker. */
    private void ended() {
        ConnState state = failState;
        String message = failMessage;
        if (state != ConnState.DISCONNECTING && state != ConnState.STANDALONE && state != ConnState.UNCONNECTED) {
            LOG.warn("resource {}: connection with {} failed ({}): {}", res.name(), link.name(), state.drbdName(),
                    message);
        }
        heartbeat.stop();
        handshake.abandon(message);
        try {
            res.worker().execute(() -> link.lost(this));
        } catch (java.util.concurrent.RejectedExecutionException e) {
            transfer.settleWaiters(message); // the resource is shutting down
            applier.shutdown();
        }
    }

    boolean failed() {
        return failed.get();
    }
}
