package io.replstor.replicator.engine;

import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.handler.flush.FlushConsolidationHandler;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.ScheduledFuture;
import io.replstor.replicator.DiskState;
import io.replstor.replicator.Role;
import io.replstor.replicator.config.NodeConfig;
import io.replstor.replicator.config.ReplicationProtocol;
import io.replstor.replicator.net.DisconnectReason;
import io.replstor.replicator.net.HandshakeSettings;
import io.replstor.replicator.net.PeerFrame;
import io.replstor.replicator.net.PeerFrameDecoder;
import io.replstor.replicator.net.PeerFrameEncoder;
import io.replstor.replicator.net.PeerHandshake;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * This node's link to one peer for one resource: DRBD's "connection" plus its "peer device". It
 * owns the connection state, dials (the node with the lower id dials, the other accepts), pairs the
 * data and meta channels into a {@link Session}, and keeps the per-peer counters that outlive a
 * session.
 *
 * <p>Threads: dialling and pairing channels run on the event loops under this object's monitor; every
 * change of the link's state (connection and replication state, the peer's role and disk, the last
 * error) runs on the resource's worker.
 */
final class PeerLink {
    private static final Logger LOG = LoggerFactory.getLogger(PeerLink.class);
    /** The first reconnect after losing a session; later attempts wait connect-int. */
    private static final long QUICK_RECONNECT_MS = 200;
    /** Writes from many I/O threads each ask for a flush; one syscall serves up to this many. */
    static final int FLUSH_BATCH = 64;

    final Resource res;
    final NodeConfig peer;
    final boolean dials;
    final HandshakeSettings settings;

    volatile ConnState conn = ConnState.STANDALONE;
    volatile ReplState repl = ReplState.OFF;
    volatile Role peerRole = Role.UNKNOWN;
    volatile DiskState peerDisk = DiskState.DUNKNOWN;
    volatile String lastError;
    /** Not StandAlone by the operator or by a split-brain/unrelated-data verdict. */
    volatile boolean wanted;
    /** One-shot: the next handshake yields a split brain (connect --discard-my-data). */
    volatile boolean discardMyData;
    volatile boolean pausedByMe;
    volatile boolean pausedByPeer;
    /** The peer says it holds writes of a lost Primary that may not be on every replica (STATE). */
    volatile boolean peerUnconfirmed;
    /** The current session (handshaking or established), or null. */
    volatile Session session;

    final AtomicLong sentBytes = new AtomicLong();
    final AtomicLong receivedBytes = new AtomicLong();
    final AtomicLong resyncSentBytes = new AtomicLong();
    final AtomicLong resyncReceivedBytes = new AtomicLong();
    /** Bits out of sync when the running resync started, and when it started; for progress. */
    volatile long syncTotalBits;
    volatile long syncStartNanos;
    volatile long syncStartDoneBytes;

    private Channel pendingData;
    private ScheduledFuture<?> redial;
    private int failedDials;

    PeerLink(Resource res, NodeConfig peer) {
        this.res = res;
        this.peer = peer;
        this.dials = res.self.id() < peer.id();
        this.settings = HandshakeSettings.of(res.cfg, res.self, peer);
    }

    String name() {
        return peer.name();
    }

    ReplicationProtocol protocol() {
        return res.cfg.protocol();
    }

    /** The established session that application writes go to, or null. */
    Session replicating() {
        Session s = session;
        return s != null && s.replicating ? s : null;
    }

    // ---- lifecycle (resource worker)

    void start() {
        wanted = true;
        setConn(ConnState.CONNECTING);
        if (dials) {
            scheduleDial(0);
        }
    }

    /** down / shutdown / disconnect: tell the peer, close, StandAlone. */
    void stop(DisconnectReason why, String message, boolean standAlone) {
        synchronized (this) {
            if (standAlone) {
                wanted = false;
            }
            if (redial != null) {
                redial.cancel(false);
                redial = null;
            }
            if (pendingData != null) {
                pendingData.close();
                pendingData = null;
            }
        }
        Session s = session;
        if (s != null) {
            setConn(ConnState.DISCONNECTING);
            s.disconnect(why, message, ConnState.DISCONNECTING, message);
            lost(s);
        }
        setConn(wanted ? ConnState.CONNECTING : ConnState.STANDALONE);
        if (wanted && dials) {
            scheduleDial(QUICK_RECONNECT_MS);
        }
    }

    // ---- dialling

    private synchronized void scheduleDial(long delayMs) {
        if (redial != null) {
            redial.cancel(false);
        }
        redial = res.node.group().next().schedule(this::dial, delayMs, TimeUnit.MILLISECONDS);
    }

    private void dial() {
        synchronized (this) {
            redial = null;
            if (!wanted || !res.up || session != null || pendingData != null) {
                return;
            }
        }
        connect(PeerFrame.CHANNEL_DATA);
    }

    private void connect(int kind) {
        Bootstrap b = new Bootstrap().group(res.node.group()).channel(res.node.channelClass())
                .option(ChannelOption.TCP_NODELAY, true)
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, (int) Math.max(1000, res.cfg.timers().timeout().toMillis()))
                .handler(new ChannelInitializer<Channel>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        ch.pipeline().addLast("flushes", new FlushConsolidationHandler(FLUSH_BATCH, true))
                                .addLast("frames", new PeerFrameDecoder(res.node.maxPayloadBytes()));
                        addSessionHandlers(ch.pipeline(), "frames", kind, false);
                    }
                });
        b.connect(res.node.faults().dialAddress(peer)).addListener((ChannelFuture f) -> {
            if (!f.isSuccess()) {
                LOG.debug("resource {}: cannot reach {} at {}: {}", res.name(), peer.name(), peer.address(),
                        f.cause().toString());
                failedDials++;
                if (kind == PeerFrame.CHANNEL_META) {
                    dropPending("the meta channel to " + peer.name() + " failed: " + f.cause().getMessage());
                }
                synchronized (this) {
                    if (wanted && session == null && pendingData == null) {
                        scheduleDial(res.cfg.timers().connectInterval().toMillis());
                    }
                }
            }
        });
    }

    private synchronized void dropPending(String why) {
        if (pendingData != null) {
            LOG.info("resource {}: {}", res.name(), why);
            pendingData.close();
            pendingData = null;
        }
    }

    /**
     * Adds, after handler {@code after}, what a channel of this link runs once its frames are decoded:
     * the handshake, the injected receive delay (tests only) and this link's frame handler.
     *
     * @param accepted the channel came in through this node's listener (it did not dial it)
     * @return the handshake handler
     */
    PeerHandshake addSessionHandlers(io.netty.channel.ChannelPipeline p, String after, int kind, boolean accepted) {
        PeerHandshake hs = new PeerHandshake(settings, kind, accepted);
        p.addAfter(after, "handshake", hs);
        var delay = res.node.faults().receiveDelay();
        String last = "handshake";
        if (delay != null) {
            p.addAfter(last, "fault-delay", delay);
            last = "fault-delay";
        }
        p.addAfter(last, "link", new LinkHandler(kind));
        return hs;
    }

    boolean accepting() {
        return wanted && res.up;
    }

    private void channelReady(Channel ch, int kind) {
        Session ready = null;
        Session old = null;
        synchronized (this) {
            if (!accepting()) {
                ch.close();
                return;
            }
            if (kind == PeerFrame.CHANNEL_DATA) {
                if (session != null) {
                    // the peer started over (restart, or it saw the old session die first)
                    old = session;
                }
                if (pendingData != null) {
                    pendingData.close();
                }
                pendingData = ch;
            } else {
                if (pendingData == null || !pendingData.isActive()) {
                    LOG.info("resource {}: meta channel from {} without a data channel; closing it", res.name(),
                            peer.name());
                    ch.close();
                    return;
                }
                ready = new Session(this, pendingData, ch);
                pendingData = null;
                session = ready;
                failedDials = 0;
            }
        }
        if (old != null) {
            old.fail(ConnState.NETWORK_FAILURE, peer.name() + " opened a new connection");
        }
        if (kind == PeerFrame.CHANNEL_DATA && dials) {
            connect(PeerFrame.CHANNEL_META);
        }
        if (ready != null) {
            Session s = ready;
            bind(s.data, s);
            bind(s.meta, s);
            ready.heartbeat.start();
            res.post(s.handshake::start);
        }
    }

    /** Hands the channel's frames to the session, first those that arrived before it existed (in order). */
    private static void bind(Channel ch, Session s) {
        LinkHandler h = ch.pipeline().get(LinkHandler.class);
        if (h != null) {
            ch.eventLoop().execute(() -> h.bind(s));
        }
    }

    private void channelGone(Channel ch) {
        Session s = session;
        if (s != null && (s.data == ch || s.meta == ch)) {
            s.fail(ConnState.NETWORK_FAILURE, "connection to " + peer.name() + " lost");
            return;
        }
        boolean redialNow = false;
        synchronized (this) {
            if (pendingData == ch) {
                pendingData = null;
                redialNow = true;
            }
            if (session == null && wanted && dials && redial == null) {
                redialNow = true;
            }
        }
        if (redialNow && dials && wanted) {
            scheduleDial(res.cfg.timers().connectInterval().toMillis());
        }
    }

    /** Called once per session, on the resource worker, after {@link Session#fail}: clean up and reconnect. */
    void lost(Session s) {
        if (!s.markLostHandled()) {
            return;
        }
        if (s.failState != null) {
            setConn(s.failState);
            if (s.failState == ConnState.TIMEOUT || s.failState == ConnState.PROTOCOL_ERROR) {
                lastError = s.failMessage; // status shows why the peer was dropped until the next handshake succeeds
            }
        }
        res.sync.sessionLost(this, s);
        s.applier.shutdown();
        s.applier.awaitQueued();
        res.sync.primaryWritesLost(this, s.applier.unconfirmed);
        synchronized (this) {
            if (session == s) {
                session = null;
            }
        }
        repl = ReplState.OFF;
        peerRole = Role.UNKNOWN;
        peerDisk = DiskState.DUNKNOWN;
        pausedByPeer = false;
        peerUnconfirmed = false;
        if (wanted) {
            setConn(ConnState.CONNECTING);
            if (dials) {
                scheduleDial(s.establishedAtNanos > 0 ? QUICK_RECONNECT_MS
                        : res.cfg.timers().connectInterval().toMillis());
            }
        } else {
            setConn(ConnState.STANDALONE);
        }
        res.statusView.emitPeer(this, "change");
    }

    // ---- state and events (worker)

    void setLastError(String error) {
        lastError = error;
    }

    void setConn(ConnState c) {
        if (conn != c) {
            conn = c;
            res.statusView.emitConnection(this, "change");
        }
    }

    void setRepl(ReplState r) {
        if (repl != r) {
            repl = r;
            res.statusView.emitPeer(this, "change");
        }
    }

    boolean paused() {
        return pausedByMe || pausedByPeer;
    }

    Map<String, Object> status() {
        Map<String, Object> p = new LinkedHashMap<>();
        p.put("peer", peer.name());
        p.put("node_id", peer.id());
        p.put("connection", conn.drbdName());
        p.put("replication", repl.drbdName());
        p.put("peer_role", peerRole.drbdName());
        p.put("peer_disk", peerDisk.drbdName());
        p.put("protocol", protocol().name());
        long oos = res.sync.outOfSyncBytes(this);
        p.put("out_of_sync_bytes", oos);
        boolean syncing = repl.syncing() || repl == ReplState.WF_BITMAP_S || repl == ReplState.WF_BITMAP_T;
        double pct = 100.0;
        Long eta = null;
        long rate = 0;
        if (syncing && syncTotalBits > 0) {
            long g = res.granularity();
            long total = syncTotalBits * g;
            long left = Math.min(oos, total);
            pct = Math.floor(1000.0 * (total - left) / total) / 10.0;
            long moved = (repl == ReplState.SYNC_TARGET || repl == ReplState.PAUSED_SYNC_T ? resyncReceivedBytes.get()
                    : resyncSentBytes.get()) - syncStartDoneBytes;
            double secs = (System.nanoTime() - syncStartNanos) / 1e9;
            rate = secs > 0 ? (long) (moved / secs) : 0;
            eta = rate > 0 ? left / rate : null;
        }
        p.put("sync_percent", pct);
        p.put("sync_rate_bytes_per_second", rate);
        p.put("sync_eta_seconds", eta);
        p.put("resync_paused", syncing && paused());
        p.put("last_error", lastError);
        p.put("sent_bytes", sentBytes.get());
        p.put("received_bytes", receivedBytes.get());
        p.put("resync_sent_bytes", resyncSentBytes.get());
        p.put("resync_received_bytes", resyncReceivedBytes.get());
        return p;
    }

    /** Frames in and out of the pipeline of one channel of this link. */
    private final class LinkHandler extends ChannelInboundHandlerAdapter {
        /**
         * Frames the peer may send between its session starting and ours: its UUIDS and STATE, and the
         * writes it replicates from its side of the cut on. Bounded in bytes (an authenticated peer only).
         */
        private static final long EARLY_BYTES_MAX = 64L << 20;
        private final int kind;
        private final java.util.ArrayDeque<ByteBuf> early = new java.util.ArrayDeque<>();
        private long earlyBytes;
        private Session bound;
        private ChannelHandlerContext ctx;

        LinkHandler(int kind) {
            this.kind = kind;
        }

        @Override
        public void handlerAdded(ChannelHandlerContext ctx) {
            this.ctx = ctx;
        }

        /** On the channel's event loop. */
        void bind(Session s) {
            bound = s;
            while (!early.isEmpty()) {
                s.onFrame(ctx.channel() == s.data, early.poll());
            }
            earlyBytes = 0;
        }

        @Override
        public void handlerRemoved(ChannelHandlerContext ctx) {
            releaseEarly();
        }

        private void releaseEarly() {
            while (!early.isEmpty()) {
                early.poll().release();
            }
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof PeerHandshake.Completed c) {
                LOG.debug("resource {}: {} channel to {} authenticated (version {})", res.name(),
                        kind == PeerFrame.CHANNEL_DATA ? "data" : "meta", peer.name(), c.protocolVersion());
                channelReady(ctx.channel(), kind);
            } else if (evt instanceof PeerHandshake.Refused r) {
                if (r.reason() == io.replstor.replicator.net.RefuseReason.CONNECTION_CLOSED && lastError != null
                        && !lastError.contains("during the handshake")) {
                    return; // keep the specific reason of the refusal that made the peer close
                }
                String msg = r.message() + (r.byPeer() ? " (refused by " + peer.name() + ")" : "");
                res.post(() -> {
                    if (!msg.equals(lastError)) {
                        LOG.warn("resource {}: connection with {} refused: {}", res.name(), peer.name(), msg);
                    }
                    lastError = msg;
                    res.statusView.emitConnection(PeerLink.this, "change");
                });
            } else {
                ctx.fireUserEventTriggered(evt);
            }
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (!(msg instanceof ByteBuf buf)) {
                ReferenceCountUtil.release(msg);
                return;
            }
            Session s = bound;
            if (s != null) {
                s.onFrame(ctx.channel() == s.data, buf);
                return;
            }
            if (earlyBytes + buf.readableBytes() > EARLY_BYTES_MAX) {
                buf.release();
                LOG.warn("resource {}: {} sent more than {} bytes before the session was ready; closing", res.name(),
                        peer.name(), EARLY_BYTES_MAX);
                ctx.close();
                return;
            }
            earlyBytes += buf.readableBytes();
            early.add(buf);
        }

        @Override
        public void channelWritabilityChanged(ChannelHandlerContext ctx) {
            ctx.fireChannelWritabilityChanged();
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            releaseEarly();
            channelGone(ctx.channel());
            ctx.fireChannelInactive();
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            String why = cause.getMessage() == null ? cause.toString() : cause.getMessage();
            Session s = session;
            if (s != null && (s.data == ctx.channel() || s.meta == ctx.channel())) {
                s.fail(cause instanceof java.io.IOException ? ConnState.BROKEN_PIPE : ConnState.PROTOCOL_ERROR,
                        "connection with " + peer.name() + ": " + why);
            } else {
                LOG.info("resource {}: connection with {}: {}", res.name(), peer.name(), why);
            }
            ctx.close();
        }
    }

    /** Shared encoder per thread: encoders keep a checksum state. */
    static final ThreadLocal<PeerFrameEncoder> ENCODER = ThreadLocal.withInitial(PeerFrameEncoder::new);
}
