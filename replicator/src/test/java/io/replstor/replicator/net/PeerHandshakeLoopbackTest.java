package io.replstor.replicator.net;

import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.replstor.replicator.config.ReplicationProtocol;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The handshake between two real sockets on loopback, followed by a ping and its answer. */
@Timeout(20)
class PeerHandshakeLoopbackTest {
    private EventLoopGroup group;
    private Channel server;

    @BeforeEach
    void start() {
        group = new NioEventLoopGroup(2);
    }

    @AfterEach
    void stop() throws InterruptedException {
        if (server != null) {
            server.close().sync();
        }
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS).sync();
    }

    /** After its handshake, answers PING with PING_ACK and reports frames and the outcome. */
    private static final class Endpoint extends ChannelInboundHandlerAdapter {
        final CompletableFuture<Object> outcome = new CompletableFuture<>();
        final CompletableFuture<PeerFrameType> firstFrame = new CompletableFuture<>();
        final boolean pingOnCompletion;

        Endpoint(boolean pingOnCompletion) {
            this.pingOnCompletion = pingOnCompletion;
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            outcome.complete(evt);
            if (evt instanceof PeerHandshake.Completed && pingOnCompletion) {
                ctx.writeAndFlush(new PeerFrameEncoder().ping(ctx.alloc()));
            }
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            ByteBuf frame = (ByteBuf) msg;
            try {
                PeerFrameType type = new PeerFrame().wrap(frame).type();
                firstFrame.complete(type);
                if (type == PeerFrameType.PING) {
                    ctx.writeAndFlush(new PeerFrameEncoder().pingAck(ctx.alloc()));
                }
            } finally {
                frame.release();
            }
        }
    }

    private static HandshakeSettings settings(String local, int localId, String peer, int peerId, String secret) {
        return new HandshakeSettings("r0", local, localId, peer, peerId, 1L << 30, ReplicationProtocol.C,
                Optional.ofNullable(secret), Duration.ofSeconds(5), 1, 1);
    }

    private Endpoint[] connect(String alphaSecret, String betaSecret) throws InterruptedException {
        Endpoint beta = new Endpoint(false);
        Endpoint alpha = new Endpoint(true);
        server = new ServerBootstrap().group(group).channel(NioServerSocketChannel.class)
                .childHandler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        ch.pipeline().addLast(new PeerFrameDecoder(),
                                new PeerHandshake(settings("beta", 1, "alpha", 0, betaSecret)), beta);
                    }
                }).bind(new InetSocketAddress("127.0.0.1", 0)).sync().channel();
        new Bootstrap().group(group).channel(NioSocketChannel.class)
                .handler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        ch.pipeline().addLast(new PeerFrameDecoder(),
                                new PeerHandshake(settings("alpha", 0, "beta", 1, alphaSecret)), alpha);
                    }
                }).connect(server.localAddress()).sync();
        return new Endpoint[] {alpha, beta};
    }

    @Test
    void sameSecretConnectsAndFramesFlowAfterwards() throws Exception {
        Endpoint[] e = connect("s3cret", "s3cret");
        PeerHandshake.Completed a = assertInstanceOf(PeerHandshake.Completed.class, e[0].outcome.get(5, TimeUnit.SECONDS));
        PeerHandshake.Completed b = assertInstanceOf(PeerHandshake.Completed.class, e[1].outcome.get(5, TimeUnit.SECONDS));
        assertEquals(1, a.peerNodeId());
        assertEquals(0, b.peerNodeId());
        assertTrue(a.authenticated() && b.authenticated());
        assertEquals(PeerFrameType.PING, e[1].firstFrame.get(5, TimeUnit.SECONDS), "beta got alpha's ping");
        assertEquals(PeerFrameType.PING_ACK, e[0].firstFrame.get(5, TimeUnit.SECONDS), "alpha got the answer");
    }

    @Test
    void wrongSecretIsRefusedOnBothEnds() throws Exception {
        Endpoint[] e = connect("s3cret", "wrong");
        for (Endpoint end : e) {
            PeerHandshake.Refused r = assertInstanceOf(PeerHandshake.Refused.class,
                    end.outcome.get(5, TimeUnit.SECONDS));
            assertEquals(RefuseReason.AUTH_FAILED, r.reason(), r.toString());
            assertTrue(r.message().contains("the shared secrets differ"), r.message());
        }
        assertFalse(e[0].firstFrame.isDone(), "no frame passed a failed handshake");
    }
}
