package io.replstor.replicator.engine;

import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.ScheduledFuture;
import io.replstor.replicator.DiskState;
import io.replstor.replicator.Role;
import io.replstor.replicator.config.NetTimers;
import io.replstor.replicator.config.ReplicationProtocol;
import io.replstor.replicator.net.DisconnectReason;
import io.replstor.replicator.net.PeerFrame;
import io.replstor.replicator.net.PeerFrameType;
import io.replstor.replicator.sync.GenerationIds;
import io.replstor.replicator.sync.SyncDecider;
import io.replstor.replicator.sync.SyncDecision;
import io.replstor.replicator.sync.SyncSide;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * One established connection with a peer: a data channel (replicated writes, resync, state,
 * bitmaps) and a meta channel (acks, barrier acks, pings), so acks never wait behind bulk data.
 *
 * <p>Threads: frames arrive on the channels' event loop; writes and resync data are applied in
 * arrival order by the session's applier thread; the handshake and state changes run on the
 * resource worker.
 */
final class Session {
    private static final Logger LOG = LoggerFactory.getLogger(Session.class);
    private static final int RS_CHUNK_BITS = 64;          // 256 KiB per resync request
    private static final int RS_MAX_OUTSTANDING = 16;
    private static final int BITMAP_RUNS_PER_FRAME = 4096;
    private static final long HEARTBEAT_TICK_MS = 100;

    final PeerLink link;
    final Resource res;
    final Channel data;
    final Channel meta;
    private final ExecutorService applier;
    private final AtomicBoolean failed = new AtomicBoolean();
    private final AtomicBoolean lostHandled = new AtomicBoolean();

    /** Application writes go to this session (set and cleared under the resource's join lock). */
    volatile boolean replicating;
    volatile long establishedAtNanos;
    volatile ConnState failState;
    volatile String failMessage;
    int slot = -1;

    /** Flyweights for received frames, one per channel (each is read on its own event loop). */
    private final PeerFrame dataFrame = new PeerFrame();
    private final PeerFrame metaFrame = new PeerFrame();

    // handshake
    private final CompletableFuture<PeerFrameCopy> peerUuids = new CompletableFuture<>();
    private final CompletableFuture<Integer> peerState = new CompletableFuture<>();
    private final CompletableFuture<Boolean> peerBitmap = new CompletableFuture<>();
    private volatile boolean handshakeDone;
    GenerationIds peerIds;

    // transfer log: writes sent and not yet written by the peer
    final Map<Long, Pending> transferLog = new ConcurrentHashMap<>();
    private final Map<Long, WriteOp> barriers = new ConcurrentHashMap<>();

    // written on the peer, not yet covered by an acked barrier
    private static final int UNFLUSHED_MAX = 4096;
    private final Object unflushedLock = new Object();
    private List<long[]> unflushed = new ArrayList<>();
    private final java.util.NavigableMap<Long, List<long[]>> unflushedByEpoch = new java.util.TreeMap<>();

    // liveness
    private volatile long lastMetaNanos = System.nanoTime();
    private volatile long pingSentNanos;
    private ScheduledFuture<?> heartbeat;

    // resync (target side)
    private final Object rsLock = new Object();
    private long rsCursor;
    private int rsOutstanding;
    private boolean rsFinishing;
    private long rsTokensNanos = System.nanoTime();

    /** A replicated write waiting for this peer. */
    static final class Pending {
        final long offset;
        final int length;
        final WriteOp op;
        final long sentNanos = System.nanoTime();
        private boolean confirmed;

        Pending(long offset, int length, WriteOp op) {
            this.offset = offset;
            this.length = length;
            this.op = op;
        }

        void confirm() {
            synchronized (this) {
                if (confirmed) {
                    return;
                }
                confirmed = true;
            }
            op.peerDone();
        }
    }

    /** What the handshake needs from the peer's UUIDS frame, copied off the buffer. */
    record PeerFrameCopy(GenerationIds ids, long flags) {
    }

    Session(PeerLink link, Channel data, Channel meta) {
        this.link = link;
        this.res = link.res;
        this.data = data;
        this.meta = meta;
        this.applier = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "apply-" + res.name() + "-" + link.name());
            t.setDaemon(true);
            return t;
        });
    }

    boolean markLostHandled() {
        return lostHandled.compareAndSet(false, true);
    }

    // ---- the handshake (resource worker)

    void establish() {
        if (failed.get()) {
            link.lost(this);
            return;
        }
        try {
            establishOrThrow();
        } catch (Exception e) {
            if (failed.get()) {
                // the connection ended while we waited (a lost channel, or the peer's DISCONNECT with its
                // verdict, which is already in last_error): nothing to add
                LOG.info("resource {}: handshake with {} ended: {}", res.name(), link.name(), failMessage);
            } else {
                String why = e.getMessage() == null ? e.toString() : e.getMessage();
                LOG.warn("resource {}: handshake with {} failed: {}", res.name(), link.name(), why, e);
                link.lastError = why;
                fail(ConnState.PROTOCOL_ERROR, why);
            }
            link.lost(this);
        }
    }

    private void establishOrThrow() throws Exception {
        long waitMs = Math.max(10_000, res.cfg.timers().timeout().toMillis() * 2);
        SyncDecision decision;
        res.joinLock.writeLock().lock();
        try {
            slot = res.md.assignPeerSlot(link.peer.id());
            GenerationIds mine = res.generationIds(slot);
            long flags = (mine.consistent() ? PeerFrame.UUID_FLAG_CONSISTENT : 0)
                    | (mine.crashedPrimary() ? PeerFrame.UUID_FLAG_CRASHED_PRIMARY : 0)
                    | (link.discardMyData ? PeerFrame.UUID_FLAG_DISCARD_MY_DATA : 0);
            sendUuids(mine, flags);
            sendState();
            PeerFrameCopy theirs = peerUuids.get(waitMs, TimeUnit.MILLISECONDS);
            peerState.get(waitMs, TimeUnit.MILLISECONDS);
            peerIds = theirs.ids();
            boolean peerDiscards = (theirs.flags() & PeerFrame.UUID_FLAG_DISCARD_MY_DATA) != 0;
            SyncSide me = new SyncSide(res.self.id(), res.self.name(), mine, res.role == Role.PRIMARY,
                    res.md.bitmap().dirtyBits(slot), link.discardMyData);
            SyncSide them = new SyncSide(link.peer.id(), link.peer.name(), peerIds,
                    link.peerRole == Role.PRIMARY, 0, peerDiscards);
            decision = SyncDecider.decide(me, them, res.cfg.afterSb());
            LOG.info("resource {}: handshake with {}: {}", res.name(), link.name(), decision);
            boolean sameData = GenerationIds.masked(mine.current()) == GenerationIds.masked(peerIds.current());
            boolean stay = decision.kind().connects()
                    || (decision.kind() == SyncDecision.Kind.NO_CONSISTENT_SOURCE && sameData);
            if (!stay) {
                link.lastError = decision.reason();
                LOG.error("resource {}: {} with {}: {}; going StandAlone", res.name(),
                        decision.splitBrainDetected() ? "split brain detected" : decision.kind(), link.name(),
                        decision.reason());
                link.wanted = false;
                sendDisconnect(decision.splitBrainDetected() ? DisconnectReason.SPLIT_BRAIN
                        : DisconnectReason.UNRELATED_DATA, decision.reason());
                fail(ConnState.STANDALONE, decision.reason());
                link.lost(this);
                res.emitConnection(link, "change");
                return;
            }
            link.discardMyData = false;
            link.lastError = null;
            replicating = true;
            establishedAtNanos = System.nanoTime();
            handshakeDone = true;
        } finally {
            res.joinLock.writeLock().unlock();
        }
        link.setConn(ConnState.CONNECTED);
        res.emitConnection(link, "change");
        SyncDecision.Kind k = decision.kind();
        if (!k.isSync()) {
            link.setRepl(ReplState.ESTABLISHED);
            res.afterNoSyncHandshake(link, this);
            return;
        }
        startSync(k.isSource(), k.isFull(), waitMs);
    }

    private void startSync(boolean source, boolean full, long waitMs) throws Exception {
        link.setRepl(source ? ReplState.WF_BITMAP_S : ReplState.WF_BITMAP_T);
        if (full) {
            res.setAllBits(slot);
        }
        if (!source) {
            res.becomeInconsistent();
        }
        // the baseline before the exchange: the target may start pulling before this side has the peer's bitmap
        long doneBefore = source ? link.resyncSentBytes.get() : link.resyncReceivedBytes.get();
        link.syncStartDoneBytes = doneBefore;
        link.syncStartNanos = System.nanoTime();
        sendBitmap();
        peerBitmap.get(waitMs * 6, TimeUnit.MILLISECONDS);
        res.md.flush();
        long movedMeanwhile = (source ? link.resyncSentBytes.get() : link.resyncReceivedBytes.get()) - doneBefore;
        link.syncTotalBits = res.md.bitmap().dirtyBits(slot) + movedMeanwhile / res.granularity();
        LOG.info("resource {}: {} resync {} {}: {} bytes out of sync", res.name(), full ? "full" : "bitmap-based",
                source ? "to" : "from", link.name(), link.syncTotalBits * res.granularity());
        if (source) {
            link.setRepl(link.paused() ? ReplState.PAUSED_SYNC_S : ReplState.SYNC_SOURCE);
            if (link.peerDisk == DiskState.UP_TO_DATE) {
                // the target needed nothing and reported UpToDate while this side was still exchanging bitmaps
                res.syncSourceFinished(link, this);
            }
        } else {
            link.setRepl(link.paused() ? ReplState.PAUSED_SYNC_T : ReplState.SYNC_TARGET);
            synchronized (rsLock) {
                rsCursor = 0;
            }
            issueResyncRequests();
        }
    }

    // ---- sending

    void sendUuids(GenerationIds ids, long flags) {
        List<Long> h = ids.history();
        long[] history = new long[h.size()];
        for (int i = 0; i < history.length; i++) {
            history[i] = h.get(i);
        }
        data.writeAndFlush(PeerLink.ENCODER.get().uuids(data.alloc(), ids.current(), ids.bitmap(), flags, history));
    }

    void sendState() {
        sendState(0);
    }

    void sendState(int extraFlags) {
        int flags = (link.pausedByMe ? PeerFrame.STATE_FLAG_SYNC_PAUSED : 0) | extraFlags;
        data.writeAndFlush(PeerLink.ENCODER.get().state(data.alloc(), res.role, res.disk, flags));
    }

    void sendDisconnect(DisconnectReason why, String message) {
        if (data.isActive()) {
            data.writeAndFlush(PeerLink.ENCODER.get().disconnect(data.alloc(), why, message));
        }
    }

    /**
     * Queues an application write; the caller holds the join lock (read) and the range's stripes.
     * {@code payload} is not consumed.
     */
    void sendWrite(WriteOp op, long seq, long epoch, long offset, ByteBuf payload, boolean fua) {
        int len = payload.readableBytes();
        Pending p = new Pending(offset, len, op);
        transferLog.put(seq, p);
        if (failed.get()) {
            return; // the loss handler (behind our join lock) confirms it
        }
        ChannelFuture f = PeerLink.ENCODER.get().writeData(data, data.alloc(), epoch, seq, offset, fua,
                payload.retainedDuplicate());
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

    /** Queues a barrier for epoch; {@code op} completes when the peer has flushed everything before it. */
    void sendBarrier(WriteOp op, long epoch) {
        barriers.put(epoch, op);
        synchronized (unflushedLock) {
            if (!unflushed.isEmpty()) {
                unflushedByEpoch.put(epoch, unflushed);
                unflushed = new ArrayList<>();
            }
        }
        if (failed.get()) {
            return;
        }
        data.writeAndFlush(PeerLink.ENCODER.get().barrier(data.alloc(), epoch));
    }

    /**
     * A write the peer has written but not yet flushed: kept until a barrier after it is acked, so a
     * peer that loses power (page cache gone) gets it marked out of sync. A barrier is sent on our own
     * once {@link #UNFLUSHED_MAX} such writes pile up without an application FLUSH.
     */
    private void writtenNotFlushed(long offset, int length) {
        boolean barrier;
        synchronized (unflushedLock) {
            unflushed.add(new long[]{offset, length});
            barrier = unflushed.size() >= UNFLUSHED_MAX;
        }
        if (barrier) {
            sendBarrier(new WriteOp(1), res.epoch.getAndIncrement());
        }
    }

    /** Marks every written-but-unflushed range in the bitmap (on loss). @return ranges marked */
    int markUnflushed(io.replstor.replicator.meta.DirtyBitmap bm) {
        int n = 0;
        synchronized (unflushedLock) {
            for (long[] r : unflushed) {
                bm.set(slot, r[0], r[1]);
                n++;
            }
            for (List<long[]> l : unflushedByEpoch.values()) {
                for (long[] r : l) {
                    bm.set(slot, r[0], r[1]);
                    n++;
                }
            }
            unflushed.clear();
            unflushedByEpoch.clear();
        }
        return n;
    }

    private void sendBitmap() {
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

    private void sendMeta(ByteBuf frame) {
        meta.writeAndFlush(frame, meta.voidPromise());
    }

    // ---- receiving (event loop)

    void onFrame(boolean onData, ByteBuf buf) {
        PeerFrame f = (onData ? dataFrame : metaFrame).wrap(buf);
        PeerFrameType t = f.type();
        boolean handedOff = false;
        try {
            if (!onData) {
                lastMetaNanos = System.nanoTime();
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
                    long epoch = f.epoch();
                    applier.execute(() -> applyBarrier(epoch));
                }
                case RS_REQUEST -> {
                    long off = f.offset();
                    long len = f.requestLength();
                    applier.execute(() -> serveResync(off, len));
                }
                case RS_DATA -> {
                    handedOff = true;
                    long off = f.offset();
                    ByteBuf payload = buf.retainedSlice(f.payloadIndex(), f.payloadLength());
                    buf.release();
                    try {
                        applier.execute(() -> applyResync(off, payload));
                    } catch (java.util.concurrent.RejectedExecutionException e) {
                        payload.release();
                    }
                }
                case RECV_ACK -> {
                    if (link.protocol() == ReplicationProtocol.B) {
                        Pending p = transferLog.get(f.sequence());
                        if (p != null) {
                            p.confirm();
                        }
                    }
                }
                case WRITE_ACK -> {
                    Pending p = transferLog.remove(f.sequence());
                    if (p != null) {
                        p.confirm();
                        writtenNotFlushed(p.offset, p.length);
                    }
                }
                case NEG_ACK -> {
                    Pending p = transferLog.remove(f.sequence());
                    if (p != null) {
                        LOG.warn("resource {}: {} could not write {} bytes at offset {}; marked out of sync",
                                res.name(), link.name(), p.length, p.offset);
                        res.md.bitmap().set(slot, p.offset, p.length);
                        p.confirm();
                    }
                }
                case BARRIER_ACK -> {
                    long e = f.epoch();
                    WriteOp op = barriers.remove(e);
                    if (op != null) {
                        op.peerDone();
                    }
                    synchronized (unflushedLock) {
                        unflushedByEpoch.headMap(e, true).clear();
                    }
                }
                case PING -> sendMeta(PeerLink.ENCODER.get().pingAck(meta.alloc()));
                case PING_ACK -> pingSentNanos = 0;
                case DISCONNECT -> {
                    String msg = link.peer.name() + " disconnected: " + f.message();
                    DisconnectReason r = f.disconnectReason();
                    if (r == DisconnectReason.SPLIT_BRAIN || r == DisconnectReason.UNRELATED_DATA) {
                        link.wanted = false;
                        link.lastError = f.message();
                    }
                    LOG.info("resource {}: {}", res.name(), msg);
                    fail(r == DisconnectReason.SPLIT_BRAIN || r == DisconnectReason.UNRELATED_DATA
                            ? ConnState.STANDALONE : ConnState.UNCONNECTED, msg);
                }
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
        PeerFrameCopy copy = new PeerFrameCopy(f.generationIds(), f.uuidFlags());
        if (!handshakeDone) {
            peerUuids.complete(copy);
            return;
        }
        if ((copy.flags() & PeerFrame.UUID_FLAG_ADOPT) != 0) {
            res.worker().execute(() -> res.adoptPeerUuids(link, this, copy));
        }
    }

    private void onState(PeerFrame f) {
        Role role = f.role();
        DiskState disk = f.diskState();
        int flags = f.stateFlags();
        DiskState before = link.peerDisk;
        Role roleBefore = link.peerRole;
        link.peerRole = role;
        link.peerDisk = disk;
        boolean pausedBefore = link.pausedByPeer;
        link.pausedByPeer = (flags & PeerFrame.STATE_FLAG_SYNC_PAUSED) != 0;
        if (!peerState.isDone()) {
            peerState.complete(flags);
        }
        if (before != disk || roleBefore != role) {
            res.emitConnection(link, "change");
            res.emitPeer(link, "change");
        }
        if ((flags & PeerFrame.STATE_FLAG_INVALIDATE_REQUEST) != 0) {
            res.worker().execute(() -> res.invalidateRequestedBy(link, this));
        }
        if (pausedBefore != link.pausedByPeer) {
            pauseChanged();
        }
        ReplState r = link.repl;
        if ((r == ReplState.SYNC_SOURCE || r == ReplState.PAUSED_SYNC_S) && disk == DiskState.UP_TO_DATE) {
            res.worker().execute(() -> res.syncSourceFinished(link, this));
        }
    }

    /** Pause flags changed on either side. */
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
            issueResyncRequests();
        }
    }

    private void onBitmap(PeerFrame f) {
        long pos = f.bitOffset();
        int runs = f.runCount();
        var bm = res.md.bitmap();
        if (runs == 0) {
            peerBitmap.complete(true); // the end marker
            return;
        }
        long limit = res.limitBits();
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
        long epoch = f.epoch();
        long seq = f.sequence();
        long off = f.offset();
        boolean fua = f.fua();
        int len = f.payloadLength();
        ByteBuf payload = buf.retainedSlice(f.payloadIndex(), len);
        buf.release();
        link.receivedBytes.addAndGet(len);
        if (link.protocol() == ReplicationProtocol.B) {
            sendMeta(PeerLink.ENCODER.get().recvAck(meta.alloc(), epoch, seq));
        }
        try {
            applier.execute(() -> applyWrite(epoch, seq, off, payload, fua));
        } catch (java.util.concurrent.RejectedExecutionException e) {
            payload.release(); // the session is closing; the primary marks the write out of sync
        }
    }

    // ---- applying (applier thread)

    private void applyWrite(long epoch, long seq, long off, ByteBuf payload, boolean fua) {
        boolean ok = false;
        try {
            res.node.faults().beforeApply();
            if (off < 0 || off + payload.readableBytes() > res.sizeBytes()) {
                throw new IllegalArgumentException("write of " + payload.readableBytes() + " bytes at offset " + off
                        + " is outside the volume (" + res.sizeBytes() + " bytes)");
            }
            res.data.write(off, payload, fua);
            ok = true;
        } catch (Exception e) {
            LOG.error("resource {}: cannot apply a replicated write of {} bytes at offset {} from {}: {}", res.name(),
                    payload.readableBytes(), off, link.name(), e.getMessage());
        } finally {
            payload.release();
        }
        if (!failed.get()) {
            sendMeta(ok ? PeerLink.ENCODER.get().writeAck(meta.alloc(), epoch, seq)
                    : PeerLink.ENCODER.get().negAck(meta.alloc(), epoch, seq));
        }
    }

    private void applyBarrier(long epoch) {
        try {
            res.data.flush();
            if (!failed.get()) {
                sendMeta(PeerLink.ENCODER.get().barrierAck(meta.alloc(), epoch, 0));
            }
        } catch (Exception e) {
            fail(ConnState.NETWORK_FAILURE, "cannot flush the disk for " + link.name() + "'s barrier: " + e.getMessage());
        }
    }

    /** Sync source: read the chunk and send it, ordered with application writes by the range locks. */
    private void serveResync(long off, long len) {
        if (failed.get()) {
            return;
        }
        if (off < 0 || len <= 0 || len > res.node.maxPayloadBytes() || off + len > res.sizeBytes()) {
            fail(ConnState.PROTOCOL_ERROR, link.name() + " asked for resync data outside the volume: offset " + off
                    + ", length " + len);
            return;
        }
        ByteBuf buf = data.alloc().directBuffer((int) len);
        res.ranges.lock(off, len);
        try {
            res.data.read(off, (int) len, buf);
            res.md.bitmap().clear(slot, off, len);
            ByteBuf head = PeerLink.ENCODER.get().rsDataHead(data.alloc(), off, buf);
            ByteBuf frame = io.netty.buffer.Unpooled.wrappedBuffer(head, buf);
            buf = null;
            data.writeAndFlush(frame, data.voidPromise());
            link.resyncSentBytes.addAndGet(len);
        } catch (Exception e) {
            fail(ConnState.NETWORK_FAILURE, "cannot read resync data at offset " + off + ": " + e.getMessage());
        } finally {
            res.ranges.unlock(off, len);
            if (buf != null) {
                buf.release();
            }
        }
    }

    private void applyResync(long off, ByteBuf payload) {
        int len = payload.readableBytes();
        try {
            if (off < 0 || off + len > res.sizeBytes()) {
                throw new IllegalArgumentException("resync data outside the volume at offset " + off);
            }
            res.data.write(off, payload, false);
            res.md.bitmap().clear(slot, off, len);
            link.resyncReceivedBytes.addAndGet(len);
        } catch (Exception e) {
            fail(ConnState.PROTOCOL_ERROR, "cannot write resync data at offset " + off + " from " + link.name() + ": "
                    + e.getMessage());
            return;
        } finally {
            payload.release();
        }
        synchronized (rsLock) {
            rsOutstanding--;
        }
        issueResyncRequests();
    }

    /** Sync target: keep up to {@link #RS_MAX_OUTSTANDING} requests in flight within c-max-rate. */
    void issueResyncRequests() {
        if (failed.get()) {
            return;
        }
        var bm = res.md.bitmap();
        long g = res.granularity();
        long ratePerSec = Math.max(1, res.cfg.cMaxRateBytesPerSecond());
        List<long[]> requests = new ArrayList<>();
        boolean finish = false;
        long delayNanos = 0;
        synchronized (rsLock) {
            ReplState r = link.repl;
            if (r != ReplState.SYNC_TARGET || rsFinishing) {
                return;
            }
            while (rsOutstanding < RS_MAX_OUTSTANDING) {
                long now = System.nanoTime();
                if (rsTokensNanos > now + 50_000_000L) {
                    delayNanos = rsTokensNanos - now;
                    break;
                }
                long start = bm.nextDirtyBit(slot, rsCursor);
                if (start < 0) {
                    if (rsOutstanding == 0) {
                        if (bm.dirtyBits(slot) == 0) {
                            rsFinishing = true;
                            finish = true;
                        } else {
                            rsCursor = 0;
                            continue;
                        }
                    }
                    break;
                }
                long end = bm.nextCleanBit(slot, start);
                if (end < 0) {
                    end = bm.bits();
                }
                end = Math.min(end, start + RS_CHUNK_BITS);
                requests.add(new long[]{start * g, (end - start) * g});
                rsOutstanding++;
                rsCursor = end;
                rsTokensNanos = Math.max(rsTokensNanos, now) + (end - start) * g * 1_000_000_000L / ratePerSec;
            }
        }
        for (long[] q : requests) {
            data.write(PeerLink.ENCODER.get().rsRequest(data.alloc(), q[0], q[1]), data.voidPromise());
        }
        if (!requests.isEmpty()) {
            data.flush();
        }
        if (delayNanos > 0) {
            data.eventLoop().schedule(this::issueResyncRequests, delayNanos, TimeUnit.NANOSECONDS);
        }
        if (finish) {
            res.worker().execute(() -> res.syncTargetFinished(link, this));
        }
    }

    // ---- liveness (event loop of the meta channel)

    void startHeartbeat() {
        heartbeat = meta.eventLoop().scheduleAtFixedRate(this::tick, HEARTBEAT_TICK_MS, HEARTBEAT_TICK_MS,
                TimeUnit.MILLISECONDS);
    }

    private void tick() {
        if (failed.get()) {
            return;
        }
        NetTimers t = res.cfg.timers();
        long now = System.nanoTime();
        long idle = now - lastMetaNanos;
        if (pingSentNanos != 0 && now - pingSentNanos > t.pingTimeout().toNanos()) {
            fail(ConnState.TIMEOUT, link.name() + " did not answer a ping within ping-timeout ("
                    + t.pingTimeout().toMillis() + " ms)");
            return;
        }
        long oldest = Long.MAX_VALUE;
        for (Pending p : transferLog.values()) {
            oldest = Math.min(oldest, p.sentNanos);
        }
        // with writes waiting, probe sooner: a peer that answers pings is alive, only slow (ko-count's case)
        long probeAfter = oldest == Long.MAX_VALUE ? t.pingInterval().toNanos()
                : Math.min(t.pingInterval().toNanos(), t.timeout().toNanos() / 2);
        if (pingSentNanos == 0 && idle > probeAfter) {
            pingSentNanos = now;
            sendMeta(PeerLink.ENCODER.get().ping(meta.alloc()));
        }
        if (oldest == Long.MAX_VALUE) {
            return;
        }
        long age = now - oldest;
        long timeout = t.timeout().toNanos();
        if (age > timeout && idle > timeout) {
            fail(ConnState.TIMEOUT, link.name() + " sent nothing for " + TimeUnit.NANOSECONDS.toMillis(idle)
                    + " ms while writes waited for it (timeout " + t.timeout().toMillis() + " ms)");
        } else if (t.koCount() > 0 && age > timeout * t.koCount()) {
            fail(ConnState.TIMEOUT, link.name() + " did not complete a write within ko-count x timeout ("
                    + t.koCount() + " x " + t.timeout().toMillis() + " ms); dropping the peer");
        }
    }

    // ---- failure

    /** Closes the session (any thread, idempotent); the resource worker then runs {@link PeerLink#lost}. */
    void fail(ConnState state, String message) {
        if (!failed.compareAndSet(false, true)) {
            return;
        }
        failState = state;
        failMessage = message;
        if (state == ConnState.TIMEOUT || state == ConnState.PROTOCOL_ERROR) {
            link.lastError = message; // status shows why the peer was dropped until the next handshake succeeds
        }
        if (state != ConnState.DISCONNECTING && state != ConnState.STANDALONE && state != ConnState.UNCONNECTED) {
            LOG.warn("resource {}: connection with {} failed ({}): {}", res.name(), link.name(), state.drbdName(),
                    message);
        }
        if (heartbeat != null) {
            heartbeat.cancel(false);
        }
        peerUuids.completeExceptionally(new IllegalStateException(message));
        peerState.completeExceptionally(new IllegalStateException(message));
        peerBitmap.completeExceptionally(new IllegalStateException(message));
        data.close();
        meta.close();
        link.setConn(state);
        try {
            res.worker().execute(() -> link.lost(this));
        } catch (java.util.concurrent.RejectedExecutionException e) {
            releaseWaiters(); // the resource is shutting down
        }
    }

    /** Waits (bounded) for writes already handed to the applier, so a detach does not race them. */
    void awaitApplier() {
        try {
            if (!applier.awaitTermination(10, TimeUnit.SECONDS)) {
                LOG.warn("resource {}: writes from {} still being applied after 10 s", res.name(), link.name());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    boolean failed() {
        return failed.get();
    }

    /** After the loss: every unconfirmed write and barrier is released (the caller marked the bitmap). */
    void releaseWaiters() {
        for (Pending p : transferLog.values()) {
            p.confirm();
        }
        transferLog.clear();
        for (WriteOp op : barriers.values()) {
            op.peerDone();
        }
        barriers.clear();
        applier.shutdown();
    }
}
