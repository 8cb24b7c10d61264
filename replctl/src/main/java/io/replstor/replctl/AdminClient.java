package io.replstor.replctl;

import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.epoll.EpollDomainSocketChannel;
import io.netty.channel.epoll.EpollEventLoopGroup;
import io.netty.channel.unix.DomainSocketAddress;
import io.netty.handler.codec.http.DefaultFullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpClientCodec;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpVersion;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/** GETs a resource of a node's admin API over its Unix socket. */
final class AdminClient {
    private AdminClient() {
    }

    record Response(int status, String body) {
    }

    /** @throws AdminException naming the socket and what went wrong */
    static Response get(Path socket, String path, long timeoutMillis) throws AdminException {
        if (!Files.exists(socket)) {
            throw new AdminException("admin socket " + socket + " does not exist: is repld running with --admin "
                    + socket + "?");
        }
        EpollEventLoopGroup group = new EpollEventLoopGroup(1);
        CompletableFuture<Response> result = new CompletableFuture<>();
        try {
            Channel ch = new Bootstrap().group(group).channel(EpollDomainSocketChannel.class)
                    .handler(new ChannelInitializer<Channel>() {
                        @Override
                        protected void initChannel(Channel c) {
                            c.pipeline().addLast(new HttpClientCodec(), new HttpObjectAggregator(16 << 20),
                                    new SimpleChannelInboundHandler<FullHttpResponse>() {
                                        @Override
                                        protected void channelRead0(ChannelHandlerContext ctx, FullHttpResponse r) {
                                            result.complete(new Response(r.status().code(),
                                                    r.content().toString(StandardCharsets.UTF_8)));
                                            ctx.close();
                                        }

                                        @Override
                                        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
                                            result.completeExceptionally(cause);
                                            ctx.close();
                                        }
                                    });
                        }
                    }).connect(new DomainSocketAddress(socket.toFile())).sync().channel();
            DefaultFullHttpRequest req = new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.GET, path);
            req.headers().set(HttpHeaderNames.HOST, "localhost").set(HttpHeaderNames.CONNECTION, "close");
            ch.writeAndFlush(req);
            ch.closeFuture().addListener(f -> result.completeExceptionally(
                    new AdminException("admin socket " + socket + " closed without an answer")));
            return result.get(timeoutMillis, TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            throw new AdminException("admin socket " + socket + ": no answer within " + timeoutMillis + " ms");
        } catch (ExecutionException e) {
            throw new AdminException("admin socket " + socket + ": " + e.getCause().getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AdminException("interrupted");
        } catch (Exception e) {
            throw new AdminException("admin socket " + socket + ": cannot connect: " + e.getMessage());
        } finally {
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
        }
    }

    static final class AdminException extends Exception {
        private static final long serialVersionUID = 1L;

        AdminException(String message) {
            super(message);
        }
    }
}
