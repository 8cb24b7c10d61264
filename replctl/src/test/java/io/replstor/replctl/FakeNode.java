package io.replstor.replctl;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.epoll.EpollEventLoopGroup;
import io.netty.channel.epoll.EpollServerDomainSocketChannel;
import io.netty.channel.unix.DomainSocketAddress;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.DefaultHttpContent;
import io.netty.handler.codec.http.DefaultHttpResponse;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.util.concurrent.DefaultThreadFactory;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/**
 * The test seam for the admin API: a real HTTP/1.1 server on a real Unix socket (Netty epoll) that
 * records every request and answers what the test's router says, whole or streamed (chunked).
 */
final class FakeNode implements AutoCloseable {
    /** One request as the node saw it. */
    record Request(String method, String uri, String contentType, String body) {
    }

    /** An answer: {@link Full} or {@link Streamed}. */
    sealed interface Reply permits Full, Streamed {
    }

    record Full(int status, String body) implements Reply {
    }

    /** Sends the status line, then whatever {@code script} writes, from a thread of its own; then ends the answer. */
    record Streamed(Script script) implements Reply {
    }

    interface Script {
        void run(Lines out) throws Exception;
    }

    /** Writes chunks of a streamed answer. */
    interface Lines {
        void line(String line);

        void raw(String text);
    }

    static Full ok(String body) {
        return new Full(200, body);
    }

    static Full error(int status, String error, String code) {
        return new Full(status, "{\"error\":\"" + error + "\",\"code\":\"" + code + "\"}");
    }

    final Path socket;
    final List<Request> requests = new CopyOnWriteArrayList<>();
    private final EpollEventLoopGroup group = new EpollEventLoopGroup(1, new DefaultThreadFactory("fake-node", true));
    private final Channel channel;
    private volatile Function<Request, Reply> router;

    FakeNode(Path socket, Function<Request, Reply> router) {
        this.socket = socket;
        this.router = router;
        channel = new ServerBootstrap().group(group).channel(EpollServerDomainSocketChannel.class)
                .childHandler(new ChannelInitializer<Channel>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        ch.pipeline().addLast(new HttpServerCodec(), new HttpObjectAggregator(1 << 20), new Handler());
                    }
                }).bind(new DomainSocketAddress(socket.toFile())).syncUninterruptibly().channel();
    }

    void route(Function<Request, Reply> r) {
        router = r;
    }

    Request last() {
        return requests.get(requests.size() - 1);
    }

    @Override
    public void close() throws IOException {
        channel.close().syncUninterruptibly();
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
        Files.deleteIfExists(socket);
    }

    private final class Handler extends SimpleChannelInboundHandler<FullHttpRequest> {
        @Override
        protected void channelRead0(ChannelHandlerContext ctx, FullHttpRequest req) {
            String ct = req.headers().get(HttpHeaderNames.CONTENT_TYPE);
            Request r = new Request(req.method().name(), req.uri(), ct, req.content().toString(StandardCharsets.UTF_8));
            requests.add(r);
            Reply reply = router.apply(r);
            if (reply instanceof Full f) {
                ByteBuf content = Unpooled.copiedBuffer(f.body(), StandardCharsets.UTF_8);
                DefaultFullHttpResponse resp = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1,
                        HttpResponseStatus.valueOf(f.status()), content);
                resp.headers().set(HttpHeaderNames.CONTENT_TYPE, "application/json")
                        .setInt(HttpHeaderNames.CONTENT_LENGTH, content.readableBytes())
                        .set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
                ctx.writeAndFlush(resp).addListener(ChannelFutureListener.CLOSE);
            } else if (reply instanceof Streamed s) {
                DefaultHttpResponse head = new DefaultHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK);
                head.headers().set(HttpHeaderNames.CONTENT_TYPE, "application/x-ndjson")
                        .set(HttpHeaderNames.TRANSFER_ENCODING, HttpHeaderValues.CHUNKED);
                ctx.writeAndFlush(head);
                Channel ch = ctx.channel();
                Thread t = new Thread(() -> {
                    try {
                        s.script().run(new Lines() {
                            @Override
                            public void line(String line) {
                                raw(line + "\n");
                            }

                            @Override
                            public void raw(String text) {
                                ch.writeAndFlush(new DefaultHttpContent(
                                        Unpooled.copiedBuffer(text, StandardCharsets.UTF_8)));
                            }
                        });
                        ch.writeAndFlush(LastHttpContent.EMPTY_LAST_CONTENT).addListener(ChannelFutureListener.CLOSE);
                    } catch (Exception e) {
                        ch.close();
                    }
                }, "fake-node-stream");
                t.setDaemon(true);
                t.start();
            }
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            ctx.close();
        }
    }
}
