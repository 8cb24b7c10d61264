package io.replstor.nbd.server;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.replstor.common.io.ClientGate;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageDecoder;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.concurrent.ScheduledFuture;
import io.replstor.nbd.Nbd;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.stream.Collectors;

/**
 * The fixed-newstyle handshake of one connection: sends the greeting, reads the client flags, then
 * answers options one at a time until GO or EXPORT_NAME starts transmission (this handler then
 * replaces itself with a {@link TransmissionHandler}, which receives any bytes already read) or
 * ABORT ends the connection.
 *
 * <p>Bad input: an unknown client flag or a bad option magic closes the connection (the stream
 * cannot be trusted); an option longer than {@link #MAX_OPTION_BYTES} closes it too (denial of
 * service); malformed option data gets ERR_INVALID and unknown options ERR_UNSUP, and parsing goes on.
 * Error replies carry a human-readable message.
 *
 * <p>Admission: GO and EXPORT_NAME on a {@link ClientGate} device ask the gate, which may answer
 * later from another thread (a cluster store commits a promotion). Meanwhile the connection reads
 * nothing and decodes nothing: options or requests the client pipelined stay in the cumulation, to
 * be decoded after a refusal or handed to the transmission handler after an admission. The answer is
 * acted on on the channel's event loop. The handshake timeout keeps running while the gate decides:
 * a client that waits longer than that is disconnected like any other slow handshake, and an
 * admission that arrives after the connection has gone is released at once.
 */
final class HandshakeHandler extends ByteToMessageDecoder {
    private static final Logger LOG = LoggerFactory.getLogger(HandshakeHandler.class);
    /** The largest option we read: a name, a few 4 KiB query strings and some slack. */
    static final int MAX_OPTION_BYTES = 64 << 10;
    private static final int OPTION_HEADER_BYTES = 16;

    private final NbdServer server;
    private final Session session = new Session();
    private boolean flagsReceived;
    /** Set after ABORT or a violation: whatever else arrives is dropped. */
    private boolean done;
    /** Set while a gate decides on this client: input is neither read nor decoded. */
    private boolean admissionPending;
    private ScheduledFuture<?> timeout;
    private String peer = "?";
    private InetAddress peerAddress;

    HandshakeHandler(NbdServer server) {
        this.server = server;
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) throws Exception {
        InetSocketAddress remote = (InetSocketAddress) ctx.channel().remoteAddress();
        peerAddress = remote.getAddress();
        peer = remote.getAddress().getHostAddress() + ":" + remote.getPort();
        ByteBuf greeting = ctx.alloc().buffer(18);
        greeting.writeLong(Nbd.NBDMAGIC).writeLong(Nbd.IHAVEOPT)
                .writeShort(Nbd.FLAG_FIXED_NEWSTYLE | Nbd.FLAG_NO_ZEROES);
        ctx.writeAndFlush(greeting, ctx.voidPromise());
        int seconds = server.config().handshakeTimeoutSeconds();
        timeout = ctx.executor().schedule(() -> {
            LOG.info("client {}: handshake not finished within {} s{}; disconnecting", peer, seconds,
                    admissionPending ? " (still waiting for the export to admit it)" : "");
            ctx.close();
        }, seconds, TimeUnit.SECONDS);
        super.channelActive(ctx);
    }

    @Override
    protected void handlerRemoved0(ChannelHandlerContext ctx) {
        cancelTimeout();
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) throws Exception {
        cancelTimeout();
        super.channelInactive(ctx);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        LOG.info("client {}: handshake failed: {}", peer, cause.toString());
        ctx.close();
    }

    private void cancelTimeout() {
        if (timeout != null) {
            timeout.cancel(false);
            timeout = null;
        }
    }

    @Override
    public void channelReadComplete(ChannelHandlerContext ctx) throws Exception {
        if (admissionPending) {
            // ByteToMessageDecoder calls read() here when auto-read is off and nothing was decoded
            // (it takes that for a half-read frame); that would go on filling the cumulation
            ctx.fireChannelReadComplete();
            return;
        }
        super.channelReadComplete(ctx);
    }

    @Override
    protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
        if (admissionPending) {
            return; // keep the bytes; they are decoded or handed on once the gate answers
        }
        if (done || !ctx.channel().isActive()) {
            // nothing left to answer; and a client that has gone must not be admitted (decodeLast
            // on close would otherwise parse a GO still in the cumulation)
            in.skipBytes(in.readableBytes());
            return;
        }
        if (!flagsReceived) {
            if (in.readableBytes() < 4) {
                return;
            }
            long flags = in.readUnsignedInt();
            if ((flags & ~(long) (Nbd.FLAG_C_FIXED_NEWSTYLE | Nbd.FLAG_C_NO_ZEROES)) != 0
                    || (flags & Nbd.FLAG_C_FIXED_NEWSTYLE) == 0) {
                violation(ctx, "client flags 0x" + Long.toHexString(flags)
                        + " (unknown flags, or not fixed newstyle)");
                return;
            }
            session.noZeroes = (flags & Nbd.FLAG_C_NO_ZEROES) != 0;
            flagsReceived = true;
        }
        if (in.readableBytes() < OPTION_HEADER_BYTES) {
            return;
        }
        int start = in.readerIndex();
        long magic = in.getLong(start);
        int option = in.getInt(start + 8);
        long length = in.getUnsignedInt(start + 12);
        if (magic != Nbd.IHAVEOPT) {
            violation(ctx, "bad option magic 0x" + Long.toHexString(magic));
            return;
        }
        if (length > MAX_OPTION_BYTES) {
            violation(ctx, Nbd.optionName(option) + " with " + length + " bytes of data (limit " + MAX_OPTION_BYTES + ")");
            return;
        }
        if (in.readableBytes() < OPTION_HEADER_BYTES + length) {
            return;
        }
        in.skipBytes(OPTION_HEADER_BYTES);
        ByteBuf data = in.readSlice((int) length);
        handleOption(ctx, option, data);
    }

    private void handleOption(ChannelHandlerContext ctx, int option, ByteBuf data) {
        boolean tlsMissing = server.config().tlsPolicy() == TlsPolicy.REQUIRE && !session.tls;
        switch (option) {
            case Nbd.OPT_EXPORT_NAME -> exportName(ctx, data, tlsMissing);
            case Nbd.OPT_ABORT -> {
                done = true;
                reply(ctx, option, Nbd.REP_ACK, null).addListener(ChannelFutureListener.CLOSE);
            }
            case Nbd.OPT_LIST -> {
                if (data.isReadable()) {
                    error(ctx, option, Nbd.REP_ERR_INVALID, "LIST takes no data");
                } else if (tlsMissing) {
                    error(ctx, option, Nbd.REP_ERR_TLS_REQD, "this server requires TLS (STARTTLS) first");
                } else {
                    list(ctx);
                }
            }
            case Nbd.OPT_STARTTLS -> startTls(ctx, data);
            case Nbd.OPT_INFO, Nbd.OPT_GO -> infoOrGo(ctx, option, data, tlsMissing);
            case Nbd.OPT_STRUCTURED_REPLY -> {
                if (data.isReadable()) {
                    error(ctx, option, Nbd.REP_ERR_INVALID, "STRUCTURED_REPLY takes no data");
                } else if (tlsMissing) {
                    error(ctx, option, Nbd.REP_ERR_TLS_REQD, "this server requires TLS (STARTTLS) first");
                } else {
                    session.structuredReplies = true;
                    reply(ctx, option, Nbd.REP_ACK, null);
                }
            }
            case Nbd.OPT_LIST_META_CONTEXT, Nbd.OPT_SET_META_CONTEXT -> metaContext(ctx, option, data, tlsMissing);
            default -> error(ctx, option, Nbd.REP_ERR_UNSUP, Nbd.optionName(option) + " is not supported");
        }
    }

    private void exportName(ChannelHandlerContext ctx, ByteBuf data, boolean tlsMissing) {
        if (tlsMissing) {
            violation(ctx, "EXPORT_NAME without TLS on a server that requires TLS");
            return;
        }
        String name = utf8(data);
        NbdExport export = name == null ? null : lookup(name);
        if (export == null || !AddressMatcher.allowed(export.allow(), peerAddress)) {
            LOG.info("client {}: EXPORT_NAME '{}' {}; disconnecting", peer, name,
                    export == null ? "does not exist" : "is not allowed from this address");
            ctx.close();
            return;
        }
        admit(ctx, export, refused -> exportNameAnswered(ctx, name, export, refused));
    }

    private void exportNameAnswered(ChannelHandlerContext ctx, String name, NbdExport export, String refused) {
        if (refused != null) {
            LOG.info("client {}: EXPORT_NAME '{}' refused: {}; disconnecting", peer, name, refused);
            done = true;
            ctx.close();
            return;
        }
        ByteBuf reply = ctx.alloc().buffer(10 + (session.noZeroes ? 0 : 124));
        reply.writeLong(export.device().sizeBytes()).writeShort(session.transmissionFlags(export));
        if (!session.noZeroes) {
            reply.writeZero(124);
        }
        ctx.writeAndFlush(reply, ctx.voidPromise());
        startTransmission(ctx, export);
    }

    private void list(ChannelHandlerContext ctx) {
        for (NbdExport e : server.config().exports()) {
            if (!AddressMatcher.allowed(e.allow(), peerAddress)) {
                continue;
            }
            byte[] name = e.name().getBytes(StandardCharsets.UTF_8);
            byte[] desc = e.description().getBytes(StandardCharsets.UTF_8);
            ByteBuf d = ctx.alloc().buffer(4 + name.length + desc.length);
            d.writeInt(name.length).writeBytes(name).writeBytes(desc);
            reply(ctx, Nbd.OPT_LIST, Nbd.REP_SERVER, d);
        }
        reply(ctx, Nbd.OPT_LIST, Nbd.REP_ACK, null);
    }

    private void startTls(ChannelHandlerContext ctx, ByteBuf data) {
        if (data.isReadable()) {
            error(ctx, Nbd.OPT_STARTTLS, Nbd.REP_ERR_INVALID, "STARTTLS takes no data");
        } else if (server.config().tlsPolicy() == TlsPolicy.OFF) {
            error(ctx, Nbd.OPT_STARTTLS, Nbd.REP_ERR_POLICY, "TLS is not enabled on this server");
        } else if (session.tls) {
            error(ctx, Nbd.OPT_STARTTLS, Nbd.REP_ERR_INVALID, "TLS is already active");
        } else {
            reply(ctx, Nbd.OPT_STARTTLS, Nbd.REP_ACK, null);
            // the ACK above is already in the outbound buffer in plain text; everything after is TLS
            SslHandler tls = server.config().sslContext().newHandler(ctx.alloc());
            ctx.pipeline().addFirst("tls", tls);
            session.resetForTls();
            LOG.debug("client {}: STARTTLS", peer);
        }
    }

    /** INFO and GO: u32 name length | name | u16 n | n x u16 info type. */
    private void infoOrGo(ChannelHandlerContext ctx, int option, ByteBuf data, boolean tlsMissing) {
        int len = data.readableBytes();
        if (len < 6) {
            error(ctx, option, Nbd.REP_ERR_INVALID, Nbd.optionName(option) + " data too short");
            return;
        }
        long nameLen = data.readUnsignedInt();
        if (nameLen > len - 6) {
            error(ctx, option, Nbd.REP_ERR_INVALID, "export name length " + nameLen + " exceeds the option data");
            return;
        }
        String name = utf8(data.readSlice((int) nameLen));
        int requests = data.readUnsignedShort();
        if (data.readableBytes() != 2 * requests) {
            error(ctx, option, Nbd.REP_ERR_INVALID, "information request count " + requests
                    + " does not match the option length");
            return;
        }
        if (name == null || nameLen > Nbd.MAX_STRING_BYTES) {
            error(ctx, option, Nbd.REP_ERR_INVALID, "export name is not valid UTF-8 of at most 4096 bytes");
            return;
        }
        if (tlsMissing) {
            error(ctx, option, Nbd.REP_ERR_TLS_REQD, "this server requires TLS (STARTTLS) first");
            return;
        }
        NbdExport export = lookup(name);
        if (export == null) {
            error(ctx, option, Nbd.REP_ERR_UNKNOWN, "no export named '" + name + "'; exports: " + exportNames());
            return;
        }
        if (!AddressMatcher.allowed(export.allow(), peerAddress)) {
            LOG.info("client {}: export '{}' refused: address not allowed", peer, export.name());
            error(ctx, option, Nbd.REP_ERR_POLICY, "export '" + name + "' is not available to this client address");
            return;
        }
        if (option == Nbd.OPT_GO && server.shuttingDown()) {
            error(ctx, option, Nbd.REP_ERR_SHUTDOWN, "server is shutting down");
            return;
        }
        if (option == Nbd.OPT_GO) {
            admit(ctx, export, refused -> goAnswered(ctx, export, refused));
        } else {
            sendInfo(ctx, option, export);
        }
    }

    private void goAnswered(ChannelHandlerContext ctx, NbdExport export, String refused) {
        if (refused != null) {
            LOG.info("client {}: export '{}' refused: {}", peer, export.name(), refused);
            error(ctx, Nbd.OPT_GO, Nbd.REP_ERR_POLICY, "export '" + export.name() + "': " + refused);
            return;
        }
        sendInfo(ctx, Nbd.OPT_GO, export);
        startTransmission(ctx, export);
    }

    /** The INFO replies and the ACK that INFO and GO share. */
    private void sendInfo(ChannelHandlerContext ctx, int option, NbdExport export) {
        // unknown info requests are ignored; we send every info type we know, asked or not
        ByteBuf info = ctx.alloc().buffer(14);
        info.writeShort(Nbd.INFO_EXPORT).writeLong(export.device().sizeBytes())
                .writeShort(session.transmissionFlags(export));
        reply(ctx, option, Nbd.REP_INFO, info);
        byte[] canonical = export.name().getBytes(StandardCharsets.UTF_8);
        ByteBuf nameInfo = ctx.alloc().buffer(2 + canonical.length);
        nameInfo.writeShort(Nbd.INFO_NAME).writeBytes(canonical);
        reply(ctx, option, Nbd.REP_INFO, nameInfo);
        if (!export.description().isEmpty()) {
            byte[] desc = export.description().getBytes(StandardCharsets.UTF_8);
            ByteBuf descInfo = ctx.alloc().buffer(2 + desc.length);
            descInfo.writeShort(Nbd.INFO_DESCRIPTION).writeBytes(desc);
            reply(ctx, option, Nbd.REP_INFO, descInfo);
        }
        ByteBuf bs = ctx.alloc().buffer(14);
        bs.writeShort(Nbd.INFO_BLOCK_SIZE).writeInt(1).writeInt(4096).writeInt(server.config().maxPayloadBytes());
        reply(ctx, option, Nbd.REP_INFO, bs);
        reply(ctx, option, Nbd.REP_ACK, null);
    }

    /**
     * LIST_META_CONTEXT and SET_META_CONTEXT: u32 export name length | name | u32 query count |
     * count x (u32 length | query). We know one context, base:allocation.
     */
    private void metaContext(ChannelHandlerContext ctx, int option, ByteBuf data, boolean tlsMissing) {
        boolean set = option == Nbd.OPT_SET_META_CONTEXT;
        if (set) {
            session.metaContextExport = null; // SET replaces the selection even when it fails
            session.baseAllocationSelected = false;
        }
        List<String> queries = new ArrayList<>();
        String name = parseMetaContext(data, queries);
        if (name == null) {
            error(ctx, option, Nbd.REP_ERR_INVALID, Nbd.optionName(option) + " data is malformed");
            return;
        }
        if (tlsMissing) {
            error(ctx, option, Nbd.REP_ERR_TLS_REQD, "this server requires TLS (STARTTLS) first");
            return;
        }
        if (set && !session.structuredReplies) {
            error(ctx, option, Nbd.REP_ERR_INVALID, "SET_META_CONTEXT needs STRUCTURED_REPLY first");
            return;
        }
        NbdExport export = lookup(name);
        if (export == null || !AddressMatcher.allowed(export.allow(), peerAddress)) {
            error(ctx, option, Nbd.REP_ERR_UNKNOWN, "no export named '" + name + "'");
            return;
        }
        boolean base = !set && queries.isEmpty();
        for (String q : queries) {
            if (q.equals(Nbd.BASE_ALLOCATION) || (!set && q.equals("base:"))) {
                base = true;
            }
        }
        if (base) {
            byte[] ctxName = Nbd.BASE_ALLOCATION.getBytes(StandardCharsets.US_ASCII);
            ByteBuf d = ctx.alloc().buffer(4 + ctxName.length);
            d.writeInt(set ? Session.BASE_ALLOCATION_ID : 0).writeBytes(ctxName);
            reply(ctx, option, Nbd.REP_META_CONTEXT, d);
            if (set) {
                session.metaContextExport = export.name();
                session.baseAllocationSelected = true;
            }
        }
        reply(ctx, option, Nbd.REP_ACK, null);
    }

    /** @return the export name, or null if malformed (queries are added to {@code queries}) */
    private static String parseMetaContext(ByteBuf data, List<String> queries) {
        if (data.readableBytes() < 8) {
            return null;
        }
        long nameLen = data.readUnsignedInt();
        if (nameLen > data.readableBytes() - 4 || nameLen > Nbd.MAX_STRING_BYTES) {
            return null;
        }
        String name = utf8(data.readSlice((int) nameLen));
        long count = data.readUnsignedInt();
        for (long i = 0; i < count; i++) {
            if (data.readableBytes() < 4) {
                return null;
            }
            long qLen = data.readUnsignedInt();
            if (qLen > data.readableBytes() || qLen > Nbd.MAX_STRING_BYTES) {
                return null;
            }
            String q = utf8(data.readSlice((int) qLen));
            if (q == null) {
                return null;
            }
            queries.add(q);
        }
        return data.isReadable() ? null : name;
    }

    private void startTransmission(ChannelHandlerContext ctx, NbdExport export) {
        cancelTimeout();
        NbdServerConfig cfg = server.config();
        ctx.pipeline().addAfter(ctx.name(), "nbd-transmission",
                new TransmissionHandler(server.ioWorkers(), server::shuttingDown, cfg.maxPayloadBytes(),
                        cfg.maxInFlight(), server.stats(export), export, session, peer));
        ctx.pipeline().remove(this); // any bytes already read go on to the transmission handler
    }

    /**
     * Passes the export's answer for this client to {@code then}: null to admit (the transmission
     * handler then owns the admission and releases it), else the reason for the refusal. An export
     * without a gate admits at once. A gate may answer later on any thread: input pauses until then,
     * and the answer is handled on this channel's event loop by {@link #onAnswer}.
     */
    private void admit(ChannelHandlerContext ctx, NbdExport export, Consumer<String> then) {
        if (!(export.device() instanceof ClientGate gate)) {
            then.accept(null);
            return;
        }
        pauseInput(ctx);
        ask(gate).whenComplete((refused, error) -> {
            try {
                ctx.executor().execute(() -> onAnswer(ctx, gate, export, refused, error, then));
            } catch (RejectedExecutionException e) {
                // the event loop stopped with the server, which closed the connection first
                if (error == null && refused == null) {
                    release(gate, export);
                }
            }
        });
    }

    /** The gate's stage; a gate that throws or returns no stage refuses. */
    private CompletionStage<String> ask(ClientGate gate) {
        try {
            return Objects.requireNonNull(gate.admitAsync(peer), "admitAsync returned no stage");
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
    }

    /**
     * Stops input while the gate decides. Auto-read off stops socket reads; {@link #decode} leaves
     * what the cumulation already holds (options or requests the client pipelined) alone; and
     * {@link #channelReadComplete} does not ask for another read.
     */
    private void pauseInput(ChannelHandlerContext ctx) {
        admissionPending = true;
        ctx.channel().config().setAutoRead(false);
    }

    /** Runs on the event loop once the gate has answered. */
    private void onAnswer(ChannelHandlerContext ctx, ClientGate gate, NbdExport export, String refused,
                          Throwable error, Consumer<String> then) {
        admissionPending = false;
        String answer = error == null ? refused : refusal(export, error);
        if (!ctx.channel().isActive() || server.shuttingDown()) {
            // the client went, the handshake timed out or the server is stopping: nobody will use it
            LOG.info("client {}: export '{}' answered after the {} ({})", peer, export.name(),
                    ctx.channel().isActive() ? "server began to shut down" : "connection closed",
                    answer == null ? "admitted; releasing it" : "refused");
            if (answer == null) {
                release(gate, export);
            }
            done = true;
            ctx.close();
            return;
        }
        // reading first: a transmission handler that takes over may pause it again (back-pressure)
        ctx.channel().config().setAutoRead(true);
        then.accept(answer);
        if (!ctx.isRemoved() && !done) {
            decodeBuffered(ctx); // a refused GO: options the client sent meanwhile are answered now
        }
    }

    private String refusal(NbdExport export, Throwable error) {
        Throwable cause = error instanceof CompletionException && error.getCause() != null ? error.getCause() : error;
        LOG.warn("client {}: export '{}': admission failed", peer, export.name(), cause);
        return "cannot admit the client: " + cause.getMessage();
    }

    /** Decodes what arrived while the gate decided, as if it had just been read. */
    private void decodeBuffered(ChannelHandlerContext ctx) {
        if (!internalBuffer().isReadable()) {
            return;
        }
        try {
            channelRead(ctx, Unpooled.EMPTY_BUFFER);
        } catch (Exception e) {
            exceptionCaught(ctx, e);
        }
    }

    private void release(ClientGate gate, NbdExport export) {
        try {
            gate.release(peer);
        } catch (RuntimeException e) {
            LOG.warn("client {}: export '{}': release failed", peer, export.name(), e);
        }
    }

    private NbdExport lookup(String name) {
        List<NbdExport> exports = server.config().exports();
        for (NbdExport e : exports) {
            if (e.name().equals(name)) {
                return e;
            }
        }
        // the empty name means the default export: the first one configured
        return name.isEmpty() && !exports.isEmpty() ? exports.get(0) : null;
    }

    private String exportNames() {
        return server.config().exports().stream()
                .filter(e -> AddressMatcher.allowed(e.allow(), peerAddress))
                .map(NbdExport::name).collect(Collectors.joining(", "));
    }

    private io.netty.channel.ChannelFuture reply(ChannelHandlerContext ctx, int option, int type, ByteBuf data) {
        int len = data == null ? 0 : data.readableBytes();
        ByteBuf header = ctx.alloc().buffer(20);
        header.writeLong(Nbd.OPTION_REPLY_MAGIC).writeInt(option).writeInt(type).writeInt(len);
        if (data == null) {
            return ctx.writeAndFlush(header);
        }
        ctx.write(header, ctx.voidPromise());
        return ctx.writeAndFlush(data);
    }

    private void error(ChannelHandlerContext ctx, int option, int type, String message) {
        LOG.debug("client {}: {} refused: {}", peer, Nbd.optionName(option), message);
        byte[] msg = message.getBytes(StandardCharsets.UTF_8);
        reply(ctx, option, type, ctx.alloc().buffer(msg.length).writeBytes(msg));
    }

    private void violation(ChannelHandlerContext ctx, String what) {
        server.handshakeViolation();
        LOG.info("client {}: {}; disconnecting", peer, what);
        done = true;
        ctx.close();
    }

    /** Strict UTF-8 without NUL, or null. */
    private static String utf8(ByteBuf b) {
        try {
            String s = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(b.nioBuffer()).toString();
            return s.indexOf('\0') >= 0 ? null : s;
        } catch (CharacterCodingException e) {
            return null;
        }
    }
}
