package io.replstor.cluster;

import com.fasterxml.jackson.databind.ObjectMapper;
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
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.util.concurrent.DefaultThreadFactory;
import com.fasterxml.jackson.core.type.TypeReference;
import io.netty.handler.codec.http.DefaultHttpContent;
import io.netty.handler.codec.http.DefaultHttpResponse;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.LastHttpContent;
import io.replstor.nbd.server.NbdExport;
import io.replstor.replicator.engine.EngineEvent;
import io.replstor.replicator.engine.EngineException;
import io.replstor.replicator.engine.ReplicationNode;
import io.replstor.replicator.engine.Resource;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.Consumer;
import io.replstor.nbd.server.NbdServer;
import io.replstor.nbd.server.ServerStats;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The admin API of a node: HTTP/1.1 on a Unix socket (mode 0660), JSON answers.
 * <pre>
 * GET /status    {"version", "pid", "uptime_seconds", "nbd": {"listen", "tls", "connections"},
 *                 "exports": [{"name", "path", "size_bytes", "readonly", "description", "connections",
 *                              "requests", "bytes_read", "bytes_written", "errors", "protocol_errors"}]}
 * GET /metrics   the same counters in the Prometheus text format
 * GET /cluster   the cluster store as this node sees it (cluster/README.md)
 * </pre>
 */
final class AdminServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(AdminServer.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path socket;
    private final NbdServer nbd;
    private final Map<String, Path> paths;
    private final ReplicationNode node;
    /** {@code GET /cluster}, or null for {@code repld serve}. */
    private final java.util.function.Supplier<java.util.concurrent.CompletableFuture<Map<String, Object>>> cluster;
    /** The witness this daemon runs, or null for a data node or {@code repld serve}. */
    private final io.replstor.replicator.config.NodeConfig witness;
    private final String configSource;
    private final ExecutorService verbs = Executors.newCachedThreadPool(new DefaultThreadFactory("admin-verb", true));
    private final long startedNanos = System.nanoTime();
    private final EpollEventLoopGroup group = new EpollEventLoopGroup(1, new DefaultThreadFactory("admin"));
    private final Channel channel;

    AdminServer(Path socket, NbdServer nbd, Map<String, Path> paths) throws IOException {
        this(socket, nbd, paths, null, null, null, null);
    }

    /**
     * @param node    the replicated node
     * @param cluster what {@code GET /cluster} answers
     */
    AdminServer(Path socket, NbdServer nbd, Map<String, Path> paths, ReplicationNode node,
                java.util.function.Supplier<java.util.concurrent.CompletableFuture<Map<String, Object>>> cluster)
            throws IOException {
        this(socket, nbd, paths, node, cluster, null, node.config().source());
    }

    /** The admin API of a witness: its status and {@code GET /cluster}. */
    static AdminServer witness(io.replstor.replicator.config.NodeConfig self,
                               io.replstor.replicator.config.ClusterConfig config,
                               java.util.function.Supplier<java.util.concurrent.CompletableFuture<Map<String, Object>>>
                                       cluster) throws IOException {
        return new AdminServer(self.admin(), null, Map.of(), null, cluster, self, config.source());
    }

    private AdminServer(Path socket, NbdServer nbd, Map<String, Path> paths, ReplicationNode node,
                        java.util.function.Supplier<java.util.concurrent.CompletableFuture<Map<String, Object>>> cluster,
                        io.replstor.replicator.config.NodeConfig witness, String configSource) throws IOException {
        this.socket = socket;
        this.nbd = nbd;
        this.paths = paths;
        this.node = node;
        this.cluster = cluster;
        this.witness = witness;
        this.configSource = configSource;
        Path parent = socket.toAbsolutePath().getParent();
        if (parent != null) {
            Files.createDirectories(parent);
        }
        Files.deleteIfExists(socket); // a stale socket from a killed daemon
        try {
            channel = new ServerBootstrap().group(group).channel(EpollServerDomainSocketChannel.class)
                    .childHandler(new ChannelInitializer<Channel>() {
                        @Override
                        protected void initChannel(Channel ch) {
                            ch.pipeline().addLast(new HttpServerCodec(), new HttpObjectAggregator(64 << 10),
                                    new Handler());
                        }
                    }).bind(new DomainSocketAddress(socket.toFile())).syncUninterruptibly().channel();
        } catch (Exception e) {
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
            throw new IOException("admin socket " + socket + ": cannot listen: " + e.getMessage(), e);
        }
        Files.setPosixFilePermissions(socket, PosixFilePermissions.fromString("rw-rw----"));
        LOG.info("admin API on {}", socket);
    }

    Map<String, Object> status() {
        Map<String, Object> s = new LinkedHashMap<>();
        s.put("version", Version.get());
        s.put("pid", ProcessHandle.current().pid());
        s.put("uptime_seconds", TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - startedNanos));
        if (witness != null) {
            s.put("node", witness.name());
            s.put("node_id", witness.id());
            s.put("role", "witness");
            s.put("config", configSource);
            s.put("resources", List.of());
            return s;
        }
        Map<String, Object> n = new LinkedHashMap<>();
        n.put("listen", nbd.localAddress().getAddress().getHostAddress() + ":" + nbd.localAddress().getPort());
        n.put("tls", nbd.config().tlsPolicy().name().toLowerCase());
        n.put("connections", nbd.connections());
        s.put("nbd", n);
        if (node != null) {
            s.put("node", node.self().name());
            s.put("node_id", node.self().id());
            s.put("role", "data");
            s.put("config", node.config().source());
            List<Map<String, Object>> resources = new ArrayList<>();
            for (Resource r : node.resources()) {
                resources.add(r.status());
            }
            s.put("resources", resources);
            return s;
        }
        List<Map<String, Object>> exports = new ArrayList<>();
        for (NbdExport e : nbd.config().exports()) {
            ServerStats st = nbd.stats(e);
            Map<String, Object> x = new LinkedHashMap<>();
            x.put("name", e.name());
            x.put("path", String.valueOf(paths.get(e.name())));
            x.put("size_bytes", e.device().sizeBytes());
            x.put("readonly", e.readOnly());
            x.put("description", e.description());
            x.put("connections", st.connections());
            x.put("requests", st.requests());
            x.put("bytes_read", st.bytesRead());
            x.put("bytes_written", st.bytesWritten());
            x.put("errors", st.errors());
            x.put("protocol_errors", st.protocolErrors());
            exports.add(x);
        }
        s.put("exports", exports);
        return s;
    }

    String metrics() {
        StringBuilder b = new StringBuilder();
        if (nbd == null) {
            return b.toString();
        }
        metric(b, "replstor_nbd_connections", "gauge", "Open NBD connections per export.", ServerStats::connections);
        metric(b, "replstor_nbd_requests_total", "counter", "NBD requests received.", ServerStats::requests);
        metric(b, "replstor_nbd_read_bytes_total", "counter", "Bytes read by clients.", ServerStats::bytesRead);
        metric(b, "replstor_nbd_written_bytes_total", "counter", "Bytes written by clients.", ServerStats::bytesWritten);
        metric(b, "replstor_nbd_errors_total", "counter", "Requests answered with an error.", ServerStats::errors);
        metric(b, "replstor_nbd_protocol_errors_total", "counter", "Connections closed for protocol violations.",
                ServerStats::protocolErrors);
        b.append("# HELP replstor_nbd_handshake_violations_total Handshakes closed for protocol violations.\n")
                .append("# TYPE replstor_nbd_handshake_violations_total counter\n")
                .append("replstor_nbd_handshake_violations_total ").append(nbd.handshakeViolations()).append('\n');
        if (node != null) {
            replicationMetrics(b);
        }
        return b.toString();
    }

    private static final String[][] PEER_METRICS = {
            {"replstor_repl_out_of_sync_bytes", "gauge", "Bytes this node has marked out of sync for the peer.",
                    "out_of_sync_bytes"},
            {"replstor_repl_sent_bytes_total", "counter", "Replicated write payload sent to the peer.", "sent_bytes"},
            {"replstor_repl_received_bytes_total", "counter", "Replicated write payload received from the peer.",
                    "received_bytes"},
            {"replstor_repl_resync_sent_bytes_total", "counter", "Resync payload sent to the peer.", "resync_sent_bytes"},
            {"replstor_repl_resync_received_bytes_total", "counter", "Resync payload received from the peer.",
                    "resync_received_bytes"}};

    private void replicationMetrics(StringBuilder b) {
        List<Map<String, Object>> resources = new ArrayList<>();
        for (Resource r : node.resources()) {
            resources.add(r.status());
        }
        b.append("# HELP replstor_repl_primary Whether this node is Primary for the resource.\n")
                .append("# TYPE replstor_repl_primary gauge\n");
        for (Map<String, Object> r : resources) {
            b.append("replstor_repl_primary{resource=\"").append(r.get("name")).append("\"} ")
                    .append("Primary".equals(r.get("role")) ? 1 : 0).append('\n');
        }
        b.append("# HELP replstor_repl_up_to_date Whether the local disk is UpToDate.\n")
                .append("# TYPE replstor_repl_up_to_date gauge\n");
        for (Map<String, Object> r : resources) {
            b.append("replstor_repl_up_to_date{resource=\"").append(r.get("name")).append("\"} ")
                    .append("UpToDate".equals(r.get("disk")) ? 1 : 0).append('\n');
        }
        b.append("# HELP replstor_repl_connected Whether the peer is Connected.\n")
                .append("# TYPE replstor_repl_connected gauge\n");
        for (Map<String, Object> r : resources) {
            for (Object o : (List<?>) r.get("peers")) {
                Map<?, ?> p = (Map<?, ?>) o;
                b.append("replstor_repl_connected{resource=\"").append(r.get("name")).append("\",peer=\"")
                        .append(p.get("peer")).append("\"} ").append("Connected".equals(p.get("connection")) ? 1 : 0)
                        .append('\n');
            }
        }
        for (String[] m : PEER_METRICS) {
            b.append("# HELP ").append(m[0]).append(' ').append(m[2]).append('\n');
            b.append("# TYPE ").append(m[0]).append(' ').append(m[1]).append('\n');
            for (Map<String, Object> r : resources) {
                for (Object o : (List<?>) r.get("peers")) {
                    Map<?, ?> p = (Map<?, ?>) o;
                    b.append(m[0]).append("{resource=\"").append(r.get("name")).append("\",peer=\"")
                            .append(p.get("peer")).append("\"} ").append(p.get(m[3])).append('\n');
                }
            }
        }
    }

    private void metric(StringBuilder b, String name, String type, String help,
                        java.util.function.ToLongFunction<ServerStats> value) {
        b.append("# HELP ").append(name).append(' ').append(help).append('\n');
        b.append("# TYPE ").append(name).append(' ').append(type).append('\n');
        for (NbdExport e : nbd.config().exports()) {
            b.append(name).append("{export=\"").append(e.name().replace("\\", "\\\\").replace("\"", "\\\""))
                    .append("\"} ").append(value.applyAsLong(nbd.stats(e))).append('\n');
        }
    }

    @Override
    public void close() {
        verbs.shutdownNow();
        channel.close().syncUninterruptibly();
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
        try {
            Files.deleteIfExists(socket);
        } catch (IOException e) {
            LOG.warn("cannot remove admin socket {}: {}", socket, e.getMessage());
        }
    }

    private final class Handler extends SimpleChannelInboundHandler<FullHttpRequest> {
        @Override
        protected void channelRead0(ChannelHandlerContext ctx, FullHttpRequest req) throws Exception {
            FullHttpResponse resp;
            String path = req.uri().split("\\?")[0];
            if (node != null && req.method().equals(HttpMethod.POST) && path.startsWith("/resources/")) {
                verb(ctx, path, req.content().toString(StandardCharsets.UTF_8));
                return;
            }
            if (node != null && req.method().equals(HttpMethod.GET) && path.equals("/events")) {
                events(ctx, req.uri().contains("now=1"));
                return;
            }
            if (cluster != null && req.method().equals(HttpMethod.GET) && path.equals("/cluster")) {
                clusterStatus(ctx);
                return;
            }
            if (!req.method().equals(HttpMethod.GET)) {
                resp = text(HttpResponseStatus.METHOD_NOT_ALLOWED, "only GET is supported\n", "text/plain");
            } else if (path.equals("/status")) {
                resp = text(HttpResponseStatus.OK, JSON.writeValueAsString(status()) + "\n", "application/json");
            } else if (path.equals("/metrics")) {
                resp = text(HttpResponseStatus.OK, metrics(), "text/plain; version=0.0.4");
            } else {
                resp = text(HttpResponseStatus.NOT_FOUND, "no such resource: " + path + " (try /status or /metrics)\n",
                        "text/plain");
            }
            ctx.writeAndFlush(resp).addListener(ChannelFutureListener.CLOSE);
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            LOG.info("admin client error: {}", cause.toString());
            ctx.close();
        }

        /** GET /cluster: answered when the store's read completes, never on a blocked event loop. */
        private void clusterStatus(ChannelHandlerContext ctx) {
            java.util.concurrent.CompletableFuture<Map<String, Object>> f;
            try {
                f = cluster.get();
            } catch (RuntimeException e) {
                f = java.util.concurrent.CompletableFuture.failedFuture(e);
            }
            f.whenComplete((m, e) -> {
                FullHttpResponse resp;
                if (e != null) {
                    Throwable c = e.getCause() != null ? e.getCause() : e;
                    resp = error(HttpResponseStatus.SERVICE_UNAVAILABLE, "unavailable", "the cluster store did not"
                            + " answer: " + c.getMessage());
                } else {
                    try {
                        resp = text(HttpResponseStatus.OK, JSON.writeValueAsString(m) + "\n", "application/json");
                    } catch (IOException x) {
                        resp = error(HttpResponseStatus.INTERNAL_SERVER_ERROR, "internal", x.toString());
                    }
                }
                ctx.writeAndFlush(resp).addListener(ChannelFutureListener.CLOSE);
            });
        }

        /** POST /resources/{name}/{verb}: runs off the event loop (verbs wait for state changes). */
        private void verb(ChannelHandlerContext ctx, String path, String body) {
            String[] parts = path.substring("/resources/".length()).split("/");
            if (parts.length != 2) {
                ctx.writeAndFlush(error(HttpResponseStatus.NOT_FOUND, "not-found", "expected /resources/NAME/VERB, got "
                        + path)).addListener(ChannelFutureListener.CLOSE);
                return;
            }
            verbs.execute(() -> {
                FullHttpResponse resp;
                try {
                    Map<String, Object> opts = body.isBlank() ? Map.of()
                            : JSON.readValue(body, new TypeReference<Map<String, Object>>() { });
                    String msg = NodeVerbs.run(node, parts[0], parts[1], opts);
                    Map<String, Object> ok = new LinkedHashMap<>();
                    ok.put("resource", parts[0]);
                    ok.put("verb", parts[1]);
                    ok.put("message", msg);
                    resp = text(HttpResponseStatus.OK, JSON.writeValueAsString(ok) + "\n", "application/json");
                } catch (EngineException e) {
                    HttpResponseStatus st = switch (e.code()) {
                        case STATE, IN_USE -> HttpResponseStatus.CONFLICT;
                        case NOT_FOUND -> HttpResponseStatus.NOT_FOUND;
                        case BAD_REQUEST -> HttpResponseStatus.BAD_REQUEST;
                        case IO -> HttpResponseStatus.INTERNAL_SERVER_ERROR;
                    };
                    resp = error(st, e.code().name().toLowerCase().replace('_', '-'), e.getMessage());
                } catch (IOException e) {
                    resp = error(HttpResponseStatus.BAD_REQUEST, "bad-request", "the request body is not a JSON object: "
                            + e.getMessage());
                } catch (RuntimeException | Error e) {
                    // answer whatever happens: a client must never wait for a reply that does not come
                    LOG.error("admin verb {} failed", path, e);
                    resp = error(HttpResponseStatus.INTERNAL_SERVER_ERROR, "internal", String.valueOf(e));
                }
                ctx.writeAndFlush(resp).addListener(ChannelFutureListener.CLOSE);
            });
        }

        /** GET /events: a chunked stream of JSON lines; exists lines first, then changes unless {@code now}. */
        private void events(ChannelHandlerContext ctx, boolean now) {
            HttpResponse head = new DefaultHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK);
            head.headers().set(HttpHeaderNames.CONTENT_TYPE, "application/x-ndjson")
                    .set(HttpHeaderNames.TRANSFER_ENCODING, HttpHeaderValues.CHUNKED)
                    .set(HttpHeaderNames.CONNECTION, "close");
            ctx.write(head);
            Channel ch = ctx.channel();
            Consumer<EngineEvent> sink = e -> line(ch, e.toMap());
            if (!now) {
                node.addListener(sink); // before the snapshot: a change may repeat, none is missed
                ch.closeFuture().addListener(f -> node.removeListener(sink));
            }
            for (EngineEvent e : node.snapshot()) {
                line(ch, e.toMap());
            }
            Map<String, Object> end = new LinkedHashMap<>();
            end.put("time", java.time.Instant.now().toString());
            end.put("type", "exists");
            end.put("object", "-");
            line(ch, end);
            if (now) {
                ch.writeAndFlush(LastHttpContent.EMPTY_LAST_CONTENT).addListener(ChannelFutureListener.CLOSE);
            }
        }

        private void line(Channel ch, Map<String, Object> m) {
            try {
                byte[] b = (JSON.writeValueAsString(m) + "\n").getBytes(StandardCharsets.UTF_8);
                ch.writeAndFlush(new DefaultHttpContent(Unpooled.wrappedBuffer(b)));
            } catch (IOException e) {
                LOG.warn("cannot encode event: {}", e.toString());
            }
        }

        private FullHttpResponse error(HttpResponseStatus status, String code, String message) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("error", message);
            m.put("code", code);
            try {
                return text(status, JSON.writeValueAsString(m) + "\n", "application/json");
            } catch (IOException e) {
                return text(status, message + "\n", "text/plain");
            }
        }

        private FullHttpResponse text(HttpResponseStatus status, String body, String type) {
            ByteBuf content = Unpooled.copiedBuffer(body, StandardCharsets.UTF_8);
            FullHttpResponse r = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, status, content);
            r.headers().set(HttpHeaderNames.CONTENT_TYPE, type).setInt(HttpHeaderNames.CONTENT_LENGTH,
                    content.readableBytes()).set(HttpHeaderNames.CONNECTION, "close");
            return r;
        }
    }
}
