package io.replstor.replicator.engine;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.handler.flush.FlushConsolidationHandler;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.DefaultThreadFactory;
import io.replstor.replicator.config.ClusterConfig;
import io.replstor.replicator.config.DiskConfig;
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

    private final ClusterConfig config;
    private final NodeConfig self;
    private final Map<String, Resource> resources = new LinkedHashMap<>();
    private final EventLoopGroup group;
    private final Channel listener;
    private final List<Consumer<EngineEvent>> listeners = new CopyOnWriteArrayList<>();
    private final FaultInjection faults;
    private final int maxPayloadBytes;

    private ReplicationNode(ClusterConfig config, NodeConfig self, FaultInjection faults, int maxPayloadBytes)
            throws IOException {
        this.config = config;
        this.self = self;
        this.faults = faults;
        this.maxPayloadBytes = maxPayloadBytes;
        for (ResourceConfig rc : config.resources()) {
            Optional<DiskConfig> d = rc.on(self.name());
            if (d.isEmpty()) {
                continue;
            }
            List<NodeConfig> peers = new ArrayList<>();
            for (NodeConfig n : config.nodes()) {
                if (n.id() != self.id() && rc.on(n.name()).isPresent()) {
                    peers.add(n);
                }
            }
            resources.put(rc.name(), new Resource(this, rc, self, d.get(), peers));
        }
        group = new NioEventLoopGroup(2, new DefaultThreadFactory("repl"));
        try {
            listener = new ServerBootstrap().group(group).channel(NioServerSocketChannel.class)
                    .option(ChannelOption.SO_REUSEADDR, true)
                    .childOption(ChannelOption.TCP_NODELAY, true)
                    .childHandler(new ChannelInitializer<SocketChannel>() {
                        @Override
                        protected void initChannel(SocketChannel ch) {
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
        LOG.info("node {} (id {}): replication listener on {}{}", self.name(), self.id(), self.address(),
                faults.active() ? " (fault injection: " + faults + ")" : "");
    }

    /** Starts the node's listener; resources stay down until {@link #upAll} or {@link Resource#up}. */
    public static ReplicationNode start(ClusterConfig config, String nodeName, FaultInjection faults,
                                        int maxPayloadBytes) throws IOException {
        NodeConfig self = config.node(nodeName).orElseThrow(() -> new IllegalArgumentException(
                config.source() + ": no node named '" + nodeName + "'"));
        return new ReplicationNode(config, self, faults, maxPayloadBytes);
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
            PeerHandshake hs = link.addSessionHandlers(ctx.pipeline(), ctx.name(), kind);
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
