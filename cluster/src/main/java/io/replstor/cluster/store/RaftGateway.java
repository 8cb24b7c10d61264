package io.replstor.cluster.store;

import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.util.concurrent.DefaultThreadFactory;
import io.replstor.replicator.config.HostPort;
import io.replstor.replicator.config.NodeConfig;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The authenticated front of this node's Ratis server. Ratis' Netty transport has neither TLS nor a hook
 * for authentication, so Ratis listens on loopback only and every byte between members passes through
 * here after a {@link GatewayHandshake} has proven that the other end is a member of this cluster file
 * holding the same shared secret.
 *
 * <ul>
 * <li>Inbound: the node's {@code raft} address. An accepted connection is handshaked, then spliced to
 *     the local Ratis port.</li>
 * <li>Outbound: per other member, a listener on 127.0.0.1 with an ephemeral port; that address is the
 *     member's address for this node's Ratis. A local connection to it is dialled on to the member's
 *     {@code raft} address, handshaked, then spliced. If the member cannot be reached, refuses, or goes
 *     away, Ratis' requests on that connection are answered with errors and Ratis closes it itself
 *     ({@link UnreachableMember} says why).</li>
 * </ul>
 * Refusals are logged (the same refusal at most once a minute, with the count since), counted and kept
 * for status. One event-loop thread carries it all: the traffic is Raft heartbeats and small entries.
 */
final class RaftGateway implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(RaftGateway.class);
    private static final long REPEAT_LOG_NS = TimeUnit.MINUTES.toNanos(1);
    private static final int REPEAT_KEYS_MAX = 256;
    private static final InetAddress LOOPBACK = InetAddress.getLoopbackAddress();

    private final StoreMembers members;
    private final NodeConfig self;
    private final byte[] secret;
    private final long connectTimeoutMs;
    private final EventLoopGroup group = new NioEventLoopGroup(1, new DefaultThreadFactory("raft-gw", true));
    private final List<Channel> listeners = new ArrayList<>();
    private final AtomicLong refusals = new AtomicLong();
    private final Map<String, long[]> repeats = new ConcurrentHashMap<>(); // message -> {last logged ns, suppressed}
    private volatile String lastRefusal;

    /** @param connectTimeout the dial and the handshake, each */
    RaftGateway(StoreMembers members, NodeConfig self, Optional<String> secret, Duration connectTimeout) {
        this.members = members;
        this.self = self;
        this.secret = secret.map(s -> s.getBytes(StandardCharsets.UTF_8)).orElse(null);
        this.connectTimeoutMs = connectTimeout.toMillis();
        if (this.secret == null) {
            LOG.warn("raft gateway: cluster '{}' has no shared-secret: members are checked by name only, not"
                    + " authenticated", members.cluster());
        }
    }

    /**
     * Opens one loopback listener per other member.
     *
     * @return by member name, the local address this node's Ratis must use for it
     */
    Map<String, InetSocketAddress> openOutbound() throws IOException {
        Map<String, InetSocketAddress> out = new LinkedHashMap<>();
        for (NodeConfig peer : members.nodes().values()) {
            if (!peer.name().equals(self.name())) {
                Channel ch = bind(new InetSocketAddress(LOOPBACK, 0), new Outbound(peer), "for member " + peer.name());
                out.put(peer.name(), (InetSocketAddress) ch.localAddress());
            }
        }
        return out;
    }

    /** Listens on the node's {@code raft} address; accepted members are spliced to {@code ratisPort} on loopback. */
    void openInbound(HostPort raft, int ratisPort) throws IOException {
        InetSocketAddress local = new InetSocketAddress(LOOPBACK, ratisPort);
        bind(raft.toSocketAddress(), new ChannelInitializer<SocketChannel>() {
            @Override
            protected void initChannel(SocketChannel ch) {
                ch.pipeline().addLast("handshake", handshake(null, (ctx, hs, peer) -> toRatis(ctx, hs, local)));
            }
        }, "(raft = " + raft + ")");
        LOG.info("raft gateway: node {} listens on {} for members of cluster '{}' ({})", self.name(), raft,
                members.cluster(), secret != null ? "HMAC-SHA256 challenge-response" : "unauthenticated");
    }

    long refusals() {
        return refusals.get();
    }

    /** The latest refusal's log line, or null. */
    String lastRefusal() {
        return lastRefusal;
    }

    private Channel bind(InetSocketAddress address, ChannelInitializer<?> init, String what) throws IOException {
        try {
            Channel ch = new ServerBootstrap().group(group).channel(NioServerSocketChannel.class)
                    .option(ChannelOption.SO_REUSEADDR, true)
                    .childOption(ChannelOption.AUTO_READ, false)
                    .childOption(ChannelOption.TCP_NODELAY, true)
                    .childHandler(init).bind(address).syncUninterruptibly().channel();
            listeners.add(ch);
            return ch;
        } catch (Exception e) {
            throw new IOException("node " + self.name() + ": the raft gateway cannot listen on " + address + " " + what
                    + ": " + (e.getMessage() == null ? e.toString() : e.getMessage()), e);
        }
    }

    private GatewayHandshake handshake(NodeConfig expected, Completion then) {
        return new GatewayHandshake(members, self, secret, expected, connectTimeoutMs, new GatewayHandshake.Outcome() {
            @Override
            public void onCompleted(ChannelHandlerContext ctx, GatewayHandshake hs, NodeConfig peer) {
                LOG.debug("raft gateway: {} is member {}", ctx.channel().remoteAddress(), peer.name());
                then.spliceWith(ctx, hs, peer);
            }

            @Override
            public void onRefused(String remote, String claimed, String message, boolean byPeer) {
                refused(remote, claimed, message, byPeer);
            }

            @Override
            public void onTimedOut(String remote, String claimed, long timeoutMs) {
                LOG.debug("raft gateway: no handshake with {} ({}) within {} ms", remote, claimed, timeoutMs);
            }
        });
    }

    /** A handshaked member connection: splice it to the local Ratis server. */
    private void toRatis(ChannelHandlerContext ctx, GatewayHandshake hs, InetSocketAddress ratis) {
        Channel member = ctx.channel();
        ChannelFuture connected = connect(member, ratis);
        connected.channel().closeFuture().addListener(x -> member.close());
        connected.addListener((ChannelFuture f) -> {
            if (!f.isSuccess()) {
                LOG.warn("raft gateway: cannot reach the local Ratis server at {}: {}", ratis, f.cause().toString());
                return;
            }
            Splice.join(member, f.channel());
            member.pipeline().remove(hs); // hands on what the member sent right after the handshake
        });
    }

    /** Dials {@code to} on {@code from}'s event loop; closing {@code from} closes the new channel. */
    private ChannelFuture connect(Channel from, InetSocketAddress to, io.netty.channel.ChannelHandler... handlers) {
        ChannelFuture f = new Bootstrap().group(from.eventLoop()).channel(NioSocketChannel.class)
                .option(ChannelOption.AUTO_READ, false)
                .option(ChannelOption.TCP_NODELAY, true)
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, (int) connectTimeoutMs)
                .handler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        ch.pipeline().addLast(handlers);
                    }
                }).connect(to);
        from.closeFuture().addListener(x -> f.channel().close());
        return f;
    }

    /**
     * Connections from this node's Ratis to one member. Ratis' side is never closed here: once the member
     * cannot be reached, its requests are answered with errors ({@link UnreachableMember} says why).
     */
    private final class Outbound extends ChannelInitializer<SocketChannel> {
        private final NodeConfig peer;

        Outbound(NodeConfig peer) {
            this.peer = peer;
        }

        @Override
        protected void initChannel(SocketChannel ratis) {
            ratis.pipeline().addLast("frames", new RatisFrameDecoder()).addLast(new ChannelInboundHandlerAdapter() {
                @Override
                public void channelActive(ChannelHandlerContext ctx) {
                    ctx.pipeline().remove(this);
                    dial(ratis);
                }
            });
        }

        private void dial(Channel ratis) {
            InetSocketAddress to = InetSocketAddress.createUnresolved(peer.raft().host(), peer.raft().port());
            GatewayHandshake hs = handshake(peer, (ctx, h, member) -> {
                Splice.joinRatis(ratis, ctx.channel());
                ctx.pipeline().remove(h); // hands on what the member sent right after the handshake
            });
            ChannelFuture dialled = connect(ratis, to, hs);
            dialled.addListener((ChannelFuture f) -> {
                if (!f.isSuccess()) {
                    LOG.debug("raft gateway: cannot reach {} at {}: {}", peer.name(), peer.raft(), f.cause().toString());
                }
            });
            dialled.channel().closeFuture().addListener(x -> UnreachableMember.install(ratis, "raft gateway on "
                    + self.name() + ": " + peer.name() + " at " + peer.raft() + " cannot be reached or went away"));
        }
    }

    @FunctionalInterface
    private interface Completion {
        void spliceWith(ChannelHandlerContext ctx, GatewayHandshake hs, NodeConfig peer);
    }

    private void refused(String remote, String claimed, String message, boolean byPeer) {
        String line = byPeer
                ? "raft gateway: " + remote + " (" + (claimed == null ? "?" : "'" + claimed + "'") + ") refused node '"
                + self.name() + "': " + message
                : "raft gateway: refused " + remote + " claiming " + (claimed == null ? "no node" : "node '" + claimed
                + "'") + ": " + message;
        refusals.incrementAndGet();
        lastRefusal = line;
        // the same refusal repeats at every Ratis retry: log it once a minute with the count in between
        String key = byPeer + "|" + claimed + "|" + message;
        long now = System.nanoTime();
        if (repeats.size() > REPEAT_KEYS_MAX) {
            repeats.clear(); // claimed names come from strangers: keep the table small
        }
        long[] r = repeats.computeIfAbsent(key, k -> new long[] {now - REPEAT_LOG_NS, 0});
        synchronized (r) {
            if (now - r[0] < REPEAT_LOG_NS) {
                r[1]++;
                return;
            }
            long suppressed = r[1];
            r[0] = now;
            r[1] = 0;
            LOG.warn("{}{}", line, suppressed > 0 ? " (" + suppressed + " more since the last report)" : "");
        }
    }

    @Override
    public void close() {
        for (Channel ch : listeners) {
            ch.close();
        }
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
    }
}
