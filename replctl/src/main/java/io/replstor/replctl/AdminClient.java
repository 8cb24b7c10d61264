package io.replstor.replctl;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.epoll.EpollDomainSocketChannel;
import io.netty.channel.epoll.EpollEventLoopGroup;
import io.netty.channel.unix.DomainSocketAddress;
import io.netty.handler.codec.http.DefaultFullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpClientCodec;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpObject;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.util.concurrent.DefaultThreadFactory;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Talks HTTP/1.1 to a node's admin API over its Unix socket (see cluster/README.md): one connection
 * per request ({@code Connection: close}). {@link #get} and {@link #post} return the whole answer;
 * {@link #stream} hands a chunked answer to the caller line by line as it arrives.
 *
 * <p>Transport failures (no socket, refused, closed without an answer, no answer in time) are
 * {@link AdminException}s, which verbs map to exit code 3; any HTTP answer, error or not, is a
 * {@link Response}.
 */
final class AdminClient {
    static final long STATUS_TIMEOUT_MILLIS = 10_000;
    /** Verbs may wait for peers (down, secondary, connect ...). */
    static final long VERB_TIMEOUT_MILLIS = 60_000;
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int CONNECT_TIMEOUT_MILLIS = 5_000;

    /** One small event loop for the whole process; daemon threads, so it never holds the JVM up. */
    private static final class Loop {
        static final EpollEventLoopGroup GROUP = new EpollEventLoopGroup(1,
                new DefaultThreadFactory("replctl-admin", true));
    }

    private AdminClient() {
    }

    /** An HTTP answer: status and body. */
    record Response(int status, String body) {
        boolean ok() {
            return status == 200;
        }

        /** The body as JSON, or null if it is not JSON (the plain {@code repld serve} answers errors in text). */
        JsonNode json() {
            try {
                return JSON.readTree(body);
            } catch (IOException e) {
                return null;
            }
        }

        /**
         * What went wrong, for an error answer: the contract's {@code error} field, else the body's
         * text, prefixed with the socket and status.
         */
        String errorMessage(Path socket) {
            JsonNode j = json();
            if (j != null && j.hasNonNull("error")) {
                return j.get("error").asText();
            }
            return socket + " answered " + status + (body.isBlank() ? "" : ": " + body.strip());
        }
    }

    static Response get(Path socket, String path, long timeoutMillis) throws AdminException {
        return request(socket, HttpMethod.GET, path, null, timeoutMillis);
    }

    /** POSTs {@code jsonBody} (an object, may be "{}") with {@code Content-Type: application/json}. */
    /**
     * GET {@code path}, which must answer a JSON object: the answer, or the exit the CLI makes of it
     * (3 unreachable, 1 refused or not a JSON object).
     */
    static Response getObject(Path socket, String path) throws ReplctlException {
        Response r;
        try {
            r = get(socket, path, STATUS_TIMEOUT_MILLIS);
        } catch (AdminException e) {
            throw ReplctlException.unreachable(e.getMessage());
        }
        if (!r.ok()) {
            throw ReplctlException.failed(r.errorMessage(socket));
        }
        com.fasterxml.jackson.databind.JsonNode j = r.json();
        if (j == null || !j.isObject()) {
            String body = r.body().strip();
            throw ReplctlException.failed(socket + " answered " + path + " with something that is not JSON: "
                    + (body.length() > 200 ? body.substring(0, 200) + "..." : body));
        }
        return r;
    }

    static Response post(Path socket, String path, String jsonBody, long timeoutMillis) throws AdminException {
        return request(socket, HttpMethod.POST, path, jsonBody, timeoutMillis);
    }

    private static Response request(Path socket, HttpMethod method, String path, String body, long timeoutMillis)
            throws AdminException {
        CompletableFuture<Response> result = new CompletableFuture<>();
        Channel ch = connect(socket, new ChannelInitializer<Channel>() {
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
                            public void channelInactive(ChannelHandlerContext ctx) {
                                result.completeExceptionally(new AdminException("admin socket " + socket
                                        + ": the node closed the connection without an answer"));
                            }

                            @Override
                            public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
                                result.completeExceptionally(cause);
                                ctx.close();
                            }
                        });
            }
        });
        try {
            ch.writeAndFlush(request(method, path, body));
            return result.get(timeoutMillis, TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            throw new AdminException("admin socket " + socket + ": no answer to " + method + " " + path + " within "
                    + timeoutMillis / 1000.0 + " s");
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            throw c instanceof AdminException a ? a : new AdminException("admin socket " + socket + ": " + c);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AdminException("admin socket " + socket + ": interrupted");
        } finally {
            ch.close();
        }
    }

    /** Receives the lines of a streamed answer. */
    interface LineSink {
        void line(String line) throws Exception;
    }

    /**
     * GETs {@code path} and hands each line of the answer (without its '\n'; empty lines skipped) to
     * {@code sink} as it arrives, on the calling thread, until the node ends the answer or closes
     * the connection; then returns the status with an empty body. An error status returns the
     * whole error body instead and calls the sink never.
     *
     * @param headerTimeoutMillis how long to wait for the status line; the body may take forever
     */
    static Response stream(Path socket, String path, long headerTimeoutMillis, LineSink sink) throws Exception {
        /* Items: String (a line), Integer (the status, first), Response (an error answer), Throwable, END. */
        BlockingQueue<Object> queue = new LinkedBlockingQueue<>();
        Object end = new Object();
        Channel ch = connect(socket, new ChannelInitializer<Channel>() {
            @Override
            protected void initChannel(Channel c) {
                c.pipeline().addLast(new HttpClientCodec(), new SimpleChannelInboundHandler<HttpObject>() {
                    private final ByteArrayOutputStream pending = new ByteArrayOutputStream();
                    private int status;
                    private boolean done;

                    @Override
                    protected void channelRead0(ChannelHandlerContext ctx, HttpObject msg) {
                        if (done) {
                            return;
                        }
                        if (msg instanceof HttpResponse r) {
                            status = r.status().code();
                            if (status == 200) {
                                queue.add(status);
                            }
                        }
                        if (msg instanceof HttpContent content) {
                            ByteBuf buf = content.content();
                            if (status != 200) {
                                byte[] b = new byte[buf.readableBytes()];
                                buf.readBytes(b);
                                pending.writeBytes(b);
                            } else {
                                while (buf.isReadable()) {
                                    int nl = buf.indexOf(buf.readerIndex(), buf.writerIndex(), (byte) '\n');
                                    int n = (nl < 0 ? buf.writerIndex() : nl) - buf.readerIndex();
                                    byte[] b = new byte[n];
                                    buf.readBytes(b);
                                    pending.writeBytes(b);
                                    if (nl >= 0) {
                                        buf.skipBytes(1);
                                        emitLine();
                                    }
                                }
                            }
                            if (msg instanceof LastHttpContent) {
                                finish();
                                ctx.close();
                            }
                        }
                    }

                    private void emitLine() {
                        String line = pending.toString(StandardCharsets.UTF_8);
                        pending.reset();
                        if (line.endsWith("\r")) {
                            line = line.substring(0, line.length() - 1);
                        }
                        if (!line.isBlank()) {
                            queue.add(line);
                        }
                    }

                    private void finish() {
                        if (done) {
                            return;
                        }
                        done = true;
                        if (status == 200) {
                            emitLine();
                            queue.add(end);
                        } else if (status != 0) {
                            queue.add(new Response(status, pending.toString(StandardCharsets.UTF_8)));
                        } else {
                            queue.add(new AdminException("admin socket " + socket
                                    + ": the node closed the connection without an answer"));
                        }
                    }

                    @Override
                    public void channelInactive(ChannelHandlerContext ctx) {
                        finish();
                    }

                    @Override
                    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
                        if (!done) {
                            done = true;
                            queue.add(cause);
                        }
                        ctx.close();
                    }
                });
            }
        });
        try {
            ch.writeAndFlush(request(HttpMethod.GET, path, null));
            Object first = queue.poll(headerTimeoutMillis, TimeUnit.MILLISECONDS);
            if (first == null) {
                throw new AdminException("admin socket " + socket + ": no answer to GET " + path + " within "
                        + headerTimeoutMillis / 1000.0 + " s");
            }
            Object item = first;
            while (true) {
                if (item == end) {
                    return new Response(200, "");
                } else if (item instanceof Response r) {
                    return r;
                } else if (item instanceof AdminException a) {
                    throw a;
                } else if (item instanceof Throwable t) {
                    throw new AdminException("admin socket " + socket + ": " + t);
                } else if (item instanceof String line) {
                    sink.line(line);
                }
                item = queue.take();
            }
        } finally {
            ch.close();
        }
    }

    private static DefaultFullHttpRequest request(HttpMethod method, String path, String body) {
        ByteBuf content = body == null ? Unpooled.EMPTY_BUFFER : Unpooled.copiedBuffer(body, StandardCharsets.UTF_8);
        DefaultFullHttpRequest req = new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, method, path, content);
        req.headers().set(HttpHeaderNames.HOST, "localhost").set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
        if (body != null) {
            req.headers().set(HttpHeaderNames.CONTENT_TYPE, HttpHeaderValues.APPLICATION_JSON)
                    .setInt(HttpHeaderNames.CONTENT_LENGTH, content.readableBytes());
        }
        return req;
    }

    private static Channel connect(Path socket, ChannelInitializer<Channel> init) throws AdminException {
        if (!Files.exists(socket)) {
            throw new AdminException("admin socket " + socket + " does not exist: is repld running"
                    + " (with this admin socket)?");
        }
        try {
            return new Bootstrap().group(Loop.GROUP).channel(EpollDomainSocketChannel.class)
                    .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, CONNECT_TIMEOUT_MILLIS).handler(init)
                    .connect(new DomainSocketAddress(socket.toFile())).sync().channel();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AdminException("admin socket " + socket + ": interrupted");
        } catch (Exception e) {
            throw new AdminException("admin socket " + socket + ": cannot connect: " + e.getMessage()
                    + " (is repld running?)");
        }
    }

    /** The node could not be reached or did not answer: exit code 3. */
    static final class AdminException extends Exception {
        private static final long serialVersionUID = 1L;

        AdminException(String message) {
            super(message, null, false, false);
        }
    }
}
