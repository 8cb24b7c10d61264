package io.replstor.replicator.engine;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.handler.flush.FlushConsolidationHandler;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.DefaultThreadFactory;
import io.netty.util.concurrent.GlobalEventExecutor;
import io.netty.util.concurrent.ScheduledFuture;
import io.replstor.replicator.authority.LocalAuthority;
import io.replstor.replicator.authority.RoleAuthority;
import io.replstor.replicator.config.ClusterConfig;
import io.replstor.replicator.config.DiskConfig;
import io.replstor.replicator.config.NetTimers;
import io.replstor.replicator.config.NodeConfig;
import io.replstor.replicator.config.ResourceConfig;
import io.replstor.replicator.net.PeerFrame;
import io.replstor.replicator.net.PeerFrameDecoder;
import io.replstor.replicator.net.PeerFrameType;
import io.replstor.replicator.net.PeerHandshake;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * The replication side of one node ({@code repld --config FILE --node NAME}): the resources this
 * node has a disk for, the replication listener on the node's address (shared by every resource;
 * each connection's HELLO names its resource), and the event stream.
 */
public final class ReplicationNode implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(ReplicationNode.class);
    /**
     * How often a Primary that wrote sends a barrier, so that its Secondaries learn which writes every
     * replica holds (DRBD's peer-ack-delay, 100 ms).
     */
    static final long PEER_ACK_DELAY_MS = 100;

    private final ClusterConfig config;
    private final NodeConfig self;
    private final Map<String, Resource> resources = new LinkedHashMap<>();
    private final EventLoopGroup group;
    private final Channel listener;
    private final List<Consumer<EngineEvent>> listeners = new CopyOnWriteArrayList<>();
    private final FaultInjection faults;
    private final int maxPayloadBytes;
    private final RoleAuthority authority;
    /**
     * How long an accepted connection may take to deliver its HELLO: the longest handshake timeout of
     * this node's resources. The handshake's own timeout starts only once the HELLO names a resource.
     */
    private final long helloTimeoutNanos;
    /** The connections the listener accepted that are still open (a closed channel leaves by itself). */
    private final ChannelGroup accepted = new DefaultChannelGroup("accepted", GlobalEventExecutor.INSTANCE);

    private ReplicationNode(ClusterConfig config, NodeConfig self, FaultInjection faults, int maxPayloadBytes,
                            RoleAuthority authority) throws IOException {
        this.config = config;
        this.self = self;
        this.faults = faults;
        this.maxPayloadBytes = maxPayloadBytes;
        this.authority = authority;
        long helloTimeout = 0;
        for (ResourceConfig rc : config.resources()) {
            Optional<DiskConfig> d = rc.on(self.name());
            if (d.isEmpty()) {
                continue;
            }
            helloTimeout = Math.max(helloTimeout, rc.timers().timeout().toNanos());
            List<NodeConfig> peers = new ArrayList<>();
            for (NodeConfig n : config.nodes()) {
                if (n.id() != self.id() && rc.on(n.name()).isPresent()) {
                    peers.add(n);
                }
            }
            resources.put(rc.name(), new Resource(this, rc, self, d.get(), peers));
        }
        this.helloTimeoutNanos = helloTimeout > 0 ? helloTimeout : NetTimers.DEFAULTS.timeout().toNanos();
        group = new NioEventLoopGroup(2, new DefaultThreadFactory("repl"));
        try {
            listener = new ServerBootstrap().group(group).channel(NioServerSocketChannel.class)
                    .option(ChannelOption.SO_REUSEADDR, true)
                    .childOption(ChannelOption.TCP_NODELAY, true)
                    .childHandler(new ChannelInitializer<SocketChannel>() {
                        @Override
                        protected void initChannel(SocketChannel ch) {
                            accepted.add(ch);
                            ch.pipeline().addLast("flushes", new FlushConsolidationHandler(PeerLink.FLUSH_BATCH, true))
                                    .addLast("frames", new PeerFrameDecoder(maxPayloadBytes))
                                    .addLast("dispatch", new Dispatcher());
                        }
                    }).bind(self.address().toSocketAddress()).syncUninterruptibly().channel();
        } catch (Exception e) {
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
            throw new IOException("node " + self.name() + ": cannot listen for peers on " + self.address() + ": "
                    + (e.getMessage() == null ? e.toString() : e.getMessage()), e);
        }
        group.next().scheduleAtFixedRate(() -> {
            for (Resource r : resources.values()) {
                r.progressTick();
            }
        }, 1, 1, TimeUnit.SECONDS);
        group.next().scheduleAtFixedRate(() -> {
            for (Resource r : resources.values()) {
                r.peerAckTick();
            }
        }, PEER_ACK_DELAY_MS, PEER_ACK_DELAY_MS, TimeUnit.MILLISECONDS);
        LOG.info("node {} (id {}): replication listener on {}{}", self.name(), self.id(), self.address(),
                faults.active() ? " (fault injection: " + faults + ")" : "");
    }

    /**
     * Starts the node's listener; resources stay down until {@link #upAll} or {@link Resource#up}. Roles
     * are decided by {@code authority} (the cluster store; it stays the caller's to close).
     */
    public static ReplicationNode start(ClusterConfig config, String nodeName, FaultInjection faults,
                                        int maxPayloadBytes, RoleAuthority authority) throws IOException {
        NodeConfig self = config.node(nodeName).orElseThrow(() -> new IllegalArgumentException(
                config.source() + ": no node named '" + nodeName + "'"));
        if (self.isWitness()) {
            throw new IllegalArgumentException(config.source() + ": node '" + nodeName + "' is a witness: it holds"
                    + " no disk and replicates nothing");
        }
        return new ReplicationNode(config, self, faults, maxPayloadBytes, authority);
    }

    /** Starts a node whose roles are decided locally, as DRBD without quorum ({@link LocalAuthority}). */
    public static ReplicationNode start(ClusterConfig config, String nodeName, FaultInjection faults,
                                        int maxPayloadBytes) throws IOException {
        return start(config, nodeName, faults, maxPayloadBytes, localAuthority(config));
    }

    /** The authority of a cluster without a store: each resource's nominal in-sync set is its data nodes. */
    public static LocalAuthority localAuthority(ClusterConfig config) {
        Map<String, java.util.Set<String>> replicas = new LinkedHashMap<>();
        for (ResourceConfig rc : config.resources()) {
            replicas.put(rc.name(), rc.on().keySet());
        }
        return new LocalAuthority(replicas);
    }

    RoleAuthority authority() {
        return authority;
    }

    /**
     * The node is stopping: I/O that waits for the cluster store (a lapsed lease, the removal of a silent
     * in-sync peer without quorum) fails now, unacknowledged, so that the NBD server's last requests and
     * its closing FLUSH end and the node stops; everything else still completes.
     */
    public void beginShutdown() {
        for (Resource r : resources.values()) {
            r.beginShutdown();
        }
    }

    /** Brings up every resource; failures are logged and kept in each resource's status. */
    public void upAll() {
        for (Resource r : resources.values()) {
            try {
                r.up();
            } catch (EngineException e) {
                LOG.error("{}", e.getMessage());
            }
        }
    }

    public NodeConfig self() {
        return self;
    }

    public ClusterConfig config() {
        return config;
    }

    public List<Resource> resources() {
        return List.copyOf(resources.values());
    }

    public Resource resource(String name) throws EngineException {
        Resource r = resources.get(name);
        if (r == null) {
            throw new EngineException(EngineException.Code.NOT_FOUND, "node " + self.name() + " has no resource '"
                    + name + "' (resources: " + String.join(", ", resources.keySet()) + ")");
        }
        return r;
    }

    /** Open connections the listener accepted (peers' and strangers'), for tests. */
    int acceptedChannels() {
        return accepted.size();
    }

    EventLoopGroup group() {
        return group;
    }

    Class<? extends Channel> channelClass() {
        return NioSocketChannel.class;
    }

    FaultInjection faults() {
        return faults;
    }

    int maxPayloadBytes() {
        return maxPayloadBytes;
    }

    // ---- events

    public void addListener(Consumer<EngineEvent> l) {
        listeners.add(l);
    }

    public void removeListener(Consumer<EngineEvent> l) {
        listeners.remove(l);
    }

    void emit(EngineEvent e) {
        for (Consumer<EngineEvent> l : listeners) {
            try {
                l.accept(e);
            } catch (RuntimeException ex) {
                LOG.warn("event listener failed: {}", ex.toString());
            }
        }
    }

    /** The current state of every object, as {@code exists} events. */
    public List<EngineEvent> snapshot() {
        List<EngineEvent> out = new ArrayList<>();
        for (Resource r : resources.values()) {
            r.snapshot(out);
        }
        return out;
    }

    @Override
    public void close() {
        for (Resource r : resources.values()) {
            try {
                r.down(true);
            } catch (EngineException e) {
                LOG.error("{}", e.getMessage());
            }
            r.shutdownWorker();
        }
        listener.close().syncUninterruptibly();
        group.shutdownGracefully(0, 2, TimeUnit.SECONDS).syncUninterruptibly();
    }

    /** Reads an accepted connection's HELLO, finds its resource and peer, and hands it to that link. */
    private final class Dispatcher extends ChannelInboundHandlerAdapter {
        private ScheduledFuture<?> helloTimeout;

        @Override
        public void handlerAdded(ChannelHandlerContext ctx) {
            // until a HELLO arrives no handshake runs, and so no handshake timeout: without this a
            // stranger that sends nothing, or part of a frame, would hold the connection forever
            helloTimeout = ctx.executor().schedule(() -> {
                LOG.info("connection from {}: no HELLO within {} ms; closing", ctx.channel().remoteAddress(),
                        TimeUnit.NANOSECONDS.toMillis(helloTimeoutNanos));
                ctx.close();
            }, helloTimeoutNanos, TimeUnit.NANOSECONDS);
        }

        @Override
        public void handlerRemoved(ChannelHandlerContext ctx) {
            helloTimeout.cancel(false);
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (!(msg instanceof ByteBuf buf)) {
                ReferenceCountUtil.release(msg);
                return;
            }
            PeerFrame f = new PeerFrame().wrap(buf);
            if (f.type() != PeerFrameType.HELLO) {
                LOG.info("connection from {}: first frame {} is not HELLO; closing", ctx.channel().remoteAddress(),
                        f.type());
                buf.release();
                ctx.close();
                return;
            }
            String resource = f.resourceName();
            int nodeId = f.nodeId();
            int kind = f.helloChannel();
            Resource r = resources.get(resource);
            PeerLink link = r == null ? null : r.linkById(nodeId);
            if (link == null || !link.accepting() || (kind != PeerFrame.CHANNEL_DATA && kind != PeerFrame.CHANNEL_META)) {
                LOG.info("connection from {} (node id {}) for resource '{}': {}; closing",
                        ctx.channel().remoteAddress(), nodeId, resource, r == null ? "no such resource here"
                                : link == null ? "not a peer of this resource" : !link.accepting()
                                ? "the resource is down or StandAlone here" : "unknown channel " + kind);
                buf.release();
                ctx.close();
                return;
            }
            PeerHandshake hs = link.addSessionHandlers(ctx.pipeline(), ctx.name(), kind, true);
            ctx.pipeline().remove(this);
            try {
                hs.channelRead(ctx.pipeline().context(hs), buf);
            } catch (Exception e) {
                ctx.fireExceptionCaught(e);
            }
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            LOG.info("connection from {}: {}", ctx.channel().remoteAddress(), cause.toString());
            ctx.close();
        }
    }
}
