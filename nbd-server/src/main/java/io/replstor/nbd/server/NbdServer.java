package io.replstor.nbd.server;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.WriteBufferWaterMark;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollEventLoopGroup;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.util.concurrent.DefaultThreadFactory;
import io.netty.util.concurrent.GlobalEventExecutor;
import io.replstor.common.io.StorageException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.IdentityHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;

/**
 * An NBD server: listens on one address and serves {@link NbdExport}s to any number of clients.
 *
 * <pre>
 * try (NbdServer server = NbdServer.start(NbdServerConfig.of(addr, exports))) { ... }
 * </pre>
 *
 * Each connection runs a {@link HandshakeHandler} and then a {@link TransmissionHandler} on a Netty
 * event loop; device I/O runs on the shared {@link IoWorkers}. Closing the server stops accepting,
 * lets in-flight requests finish, flushes every device and closes the connections.
 */
public final class NbdServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(NbdServer.class);

    private final NbdServerConfig config;
    private final EventLoopGroup bossGroup;
    private final EventLoopGroup workerGroup;
    private final IoWorkers ioWorkers;
    private final ChannelGroup channels = new DefaultChannelGroup("nbd", GlobalEventExecutor.INSTANCE);
    private final Map<NbdExport, ServerStats> stats = new IdentityHashMap<>();
    private final LongAdder handshakeViolations = new LongAdder();
    private final AtomicInteger connectionCount = new AtomicInteger();
    private final Channel serverChannel;
    private volatile boolean shuttingDown;

    /** @param eventLoopThreads connection event loops; 0 for Netty's default (twice the cores) */
    private NbdServer(NbdServerConfig config, int eventLoopThreads) throws IOException {
        this.config = config;
        for (NbdExport e : config.exports()) {
            stats.put(e, new ServerStats());
        }
        boolean epoll = Epoll.isAvailable();
        this.bossGroup = epoll ? new EpollEventLoopGroup(1, new DefaultThreadFactory("nbd-accept"))
                : new NioEventLoopGroup(1, new DefaultThreadFactory("nbd-accept"));
        this.workerGroup = epoll ? new EpollEventLoopGroup(eventLoopThreads, new DefaultThreadFactory("nbd-io"))
                : new NioEventLoopGroup(eventLoopThreads, new DefaultThreadFactory("nbd-io"));
        this.ioWorkers = new IoWorkers("nbd-disk", config.ioThreads(),
                Integer.highestOneBit(Math.max(1024, config.maxInFlight() * config.maxConnections())) * 2);
        ServerBootstrap b = new ServerBootstrap()
                .group(bossGroup, workerGroup)
                .channel(epoll ? EpollServerSocketChannel.class : NioServerSocketChannel.class)
                .option(ChannelOption.SO_REUSEADDR, true)
                .option(ChannelOption.SO_BACKLOG, 128)
                .childOption(ChannelOption.TCP_NODELAY, true)
                .childOption(ChannelOption.SO_KEEPALIVE, true)
                .childOption(ChannelOption.WRITE_BUFFER_WATER_MARK, new WriteBufferWaterMark(4 << 20, 16 << 20))
                .childHandler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        if (shuttingDown || connectionCount.incrementAndGet() > config.maxConnections()) {
                            if (!shuttingDown) {
                                connectionCount.decrementAndGet();
                                LOG.warn("refusing client {}: {} connections already", ch.remoteAddress(),
                                        config.maxConnections());
                            }
                            ch.close();
                            return;
                        }
                        ch.closeFuture().addListener(f -> connectionCount.decrementAndGet());
                        channels.add(ch);
                        ch.pipeline().addLast("nbd-handshake", new HandshakeHandler(NbdServer.this));
                        ch.pipeline().addLast("nbd-last", new LastHandler());
                    }
                });
        try {
            this.serverChannel = b.bind(config.listen()).syncUninterruptibly().channel();
        } catch (Exception e) {
            shutdownGroups();
            throw new IOException("cannot listen on " + config.listen() + ": " + e.getMessage(), e);
        }
        LOG.info("NBD server listening on {} ({} transport, {} I/O threads, tls {})", localAddress(),
                epoll ? "epoll" : "nio", config.ioThreads(), config.tlsPolicy().name().toLowerCase());
    }

    public static NbdServer start(NbdServerConfig config) throws IOException {
        return new NbdServer(config, 0);
    }

    /** For tests that need several connections on one event loop (to show it never blocks). */
    static NbdServer start(NbdServerConfig config, int eventLoopThreads) throws IOException {
        return new NbdServer(config, eventLoopThreads);
    }

    public NbdServerConfig config() {
        return config;
    }

    public InetSocketAddress localAddress() {
        return (InetSocketAddress) serverChannel.localAddress();
    }

    IoWorkers ioWorkers() {
        return ioWorkers;
    }

    boolean shuttingDown() {
        return shuttingDown;
    }

    void handshakeViolation() {
        handshakeViolations.increment();
    }

    public long handshakeViolations() {
        return handshakeViolations.sum();
    }

    public ServerStats stats(NbdExport export) {
        return stats.get(export);
    }

    public int connections() {
        return connectionCount.get();
    }

    @Override
    public void close() {
        if (shuttingDown) {
            return;
        }
        shuttingDown = true;
        LOG.info("NBD server on {} shutting down", localAddress());
        serverChannel.close().syncUninterruptibly();
        // let requests already at the workers finish and their replies go out
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (ioWorkers.queued() > 0 && System.nanoTime() < deadline) {
            sleepQuietly(10);
        }
        ioWorkers.close();
        channels.close().awaitUninterruptibly(5, TimeUnit.SECONDS);
        shutdownGroups();
        for (NbdExport e : config.exports()) {
            try {
                e.device().flush();
            } catch (StorageException ex) {
                LOG.error("flushing export '{}' at shutdown failed: {}", e.name(), ex.getMessage());
            }
        }
    }

    private void shutdownGroups() {
        bossGroup.shutdownGracefully(0, 2, TimeUnit.SECONDS).syncUninterruptibly();
        workerGroup.shutdownGracefully(0, 2, TimeUnit.SECONDS).syncUninterruptibly();
    }

    private static void sleepQuietly(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Logs what nothing before it handled, and drops stray messages so they do not leak. */
    private static final class LastHandler extends ChannelInboundHandlerAdapter {
        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            io.netty.util.ReferenceCountUtil.release(msg);
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            LOG.info("client {}: {}", ctx.channel().remoteAddress(), cause.toString());
            ctx.close();
        }
    }
}
