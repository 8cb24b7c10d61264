package io.replstor.nbd.client;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelPipeline;
import io.netty.handler.codec.DecoderException;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.Future;
import io.replstor.nbd.Nbd;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CompletableFuture;
import javax.net.ssl.SSLException;

/**
 * The handshake-phase handler: the primitives a {@link Handshake} plan is built from (await the greeting, send
 * one option and collect its replies, start TLS, send EXPORT_NAME, switch to transmission). Everything runs on
 * the channel's event loop and at most one thing is awaited at a time, because the client must not send an
 * option before the final reply to the previous one. Whatever is awaited fails when the connection closes,
 * the decoder finds a framing error, or {@link #fail} is called (the handshake timeout).
 */
final class OptionNegotiator extends ChannelInboundHandlerAdapter {
    /** Receives the non-final replies to one option; throws to abort the handshake. Must not release. */
    interface ReplySink {
        void accept(OptionReply reply) throws NbdException;
    }

    /** The final reply to an option: ACK, or an error type with its (possibly empty) message. */
    record OptionResult(int option, int replyType, String message) {
        boolean acked() {
            return replyType == Nbd.REP_ACK;
        }
    }

    private record Exchange(int option, ReplySink sink, CompletableFuture<OptionResult> result) {
    }

    private final String peer;
    private final OptionReplyDecoder decoder;
    private final CompletableFuture<HandshakeMessages.Greeting> greeting = new CompletableFuture<>();
    private ChannelHandlerContext ctx;
    private Exchange exchange;
    private CompletableFuture<HandshakeMessages.ExportNameReply> exportNameReply;
    private CompletableFuture<?> waiting = greeting;
    private String stage = "waiting for the greeting";
    private NbdException failure;
    private boolean transmission;

    OptionNegotiator(String peer, OptionReplyDecoder decoder) {
        this.peer = peer;
        this.decoder = decoder;
    }

    String peer() {
        return peer;
    }

    /** What the handshake is currently waiting for, for error messages. */
    String stage() {
        return stage;
    }

    CompletableFuture<HandshakeMessages.Greeting> greeting() {
        return greeting;
    }

    void sendClientFlags(int flags) {
        ctx.writeAndFlush(OptionRequests.clientFlags(ctx.alloc(), flags)).addListener(this::onWriteDone);
    }

    /**
     * Sends one option (taking ownership of {@code request}) and completes with its final reply. Non-final
     * replies go to {@code sink}; they are released after it returns.
     */
    CompletableFuture<OptionResult> exchange(int option, ByteBuf request, ReplySink sink) {
        if (failure != null) {
            request.release();
            return CompletableFuture.failedFuture(failure);
        }
        CompletableFuture<OptionResult> result = new CompletableFuture<>();
        exchange = new Exchange(option, sink, result);
        await(result, "waiting for the reply to " + Nbd.optionName(option));
        ctx.writeAndFlush(request).addListener(this::onWriteDone);
        return result;
    }

    /** After the server ACKed STARTTLS: puts TLS under everything and completes when its handshake is done. */
    CompletableFuture<Void> startTls(SslContext sslContext, String host, int port) {
        if (failure != null) {
            return CompletableFuture.failedFuture(failure);
        }
        CompletableFuture<Void> done = new CompletableFuture<>();
        await(done, "doing the TLS handshake");
        SslHandler tls = sslContext.newHandler(ctx.alloc(), host, port);
        // The server sends nothing between its ACK and our ClientHello, so no plaintext byte can be misread.
        ctx.pipeline().addFirst("nbd-tls", tls);
        tls.handshakeFuture().addListener(f -> {
            if (f.isSuccess()) {
                waiting = null;
                done.complete(null);
            } else {
                fail(new NbdException(NbdException.Kind.TLS, "TLS handshake with " + peer + " failed: "
                        + f.cause().getMessage(), f.cause()));
            }
        });
        return done;
    }

    /** Sends {@code NBD_OPT_EXPORT_NAME}; the server either answers with size and flags or closes. */
    CompletableFuture<HandshakeMessages.ExportNameReply> exportName(String name, boolean bothNoZeroes) {
        if (failure != null) {
            return CompletableFuture.failedFuture(failure);
        }
        CompletableFuture<HandshakeMessages.ExportNameReply> reply = new CompletableFuture<>();
        exportNameReply = reply;
        await(reply, "waiting for the reply to EXPORT_NAME '" + name
                + "' (a server closes the connection if it cannot serve the export)");
        decoder.expectExportNameReply(bothNoZeroes);
        ctx.writeAndFlush(OptionRequests.exportName(ctx.alloc(), name)).addListener(this::onWriteDone);
        return reply;
    }

    /** Replaces the handshake handlers with the transmission ones; any bytes already buffered go to the latter. */
    void enterTransmission(TransmissionHandler handler) {
        transmission = true;
        waiting = null;
        stage = "transmission";
        ChannelPipeline pipeline = ctx.pipeline();
        pipeline.replace(this, "nbd-transmission", handler);
        pipeline.replace(decoder, "nbd-replies", new ReplyDecoder(handler));
    }

    /** Fails whatever is awaited and closes the connection; ignored once transmission started. */
    void fail(NbdException cause) {
        if (transmission || failure != null) {
            return;
        }
        failure = cause;
        exchange = null;
        exportNameReply = null;
        CompletableFuture<?> w = waiting;
        waiting = null;
        if (w != null) {
            w.completeExceptionally(cause);
        }
        ctx.close();
    }

    void close() {
        ctx.close();
    }

    @Override
    public void handlerAdded(ChannelHandlerContext context) {
        ctx = context;
    }

    @Override
    public void channelRead(ChannelHandlerContext context, Object msg) {
        try {
            if (msg instanceof OptionReply reply) {
                onOptionReply(reply);
            } else if (msg instanceof HandshakeMessages.Greeting g) {
                if (greeting.isDone()) {
                    throw violation("a second greeting");
                }
                // Cleared before completing: the continuation runs now and awaits the next thing.
                waiting = null;
                greeting.complete(g);
            } else if (msg instanceof HandshakeMessages.ExportNameReply r && exportNameReply != null) {
                CompletableFuture<HandshakeMessages.ExportNameReply> f = exportNameReply;
                exportNameReply = null;
                waiting = null;
                f.complete(r);
            } else {
                throw violation("an unexpected " + msg);
            }
        } catch (NbdException e) {
            fail(e);
        } finally {
            ReferenceCountUtil.release(msg);
        }
    }

    private void onOptionReply(OptionReply reply) throws NbdException {
        Exchange current = exchange;
        if (current == null) {
            throw violation("an unsolicited " + reply);
        }
        if (reply.option() != current.option()) {
            throw violation("a reply for " + Nbd.optionName(reply.option()) + " while waiting for the reply to "
                    + Nbd.optionName(current.option()));
        }
        if (!reply.isFinal()) {
            current.sink().accept(reply);
            return;
        }
        exchange = null;
        waiting = null;
        String message = reply.isError() ? reply.content().toString(StandardCharsets.UTF_8) : "";
        current.result().complete(new OptionResult(current.option(), reply.type(), message));
    }

    @Override
    public void channelInactive(ChannelHandlerContext context) throws Exception {
        fail(new NbdException(NbdException.Kind.CONNECTION_LOST, peer + " closed the connection while " + stage));
        super.channelInactive(context);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext context, Throwable cause) {
        fail(translate(cause));
    }

    private NbdException translate(Throwable cause) {
        Throwable root = cause instanceof DecoderException && cause.getCause() != null ? cause.getCause() : cause;
        if (root instanceof SSLException) {
            return new NbdException(NbdException.Kind.TLS, "TLS with " + peer + " failed while " + stage + ": "
                    + root.getMessage(), root);
        }
        if (cause instanceof DecoderException) {
            return new NbdException(NbdException.Kind.PROTOCOL_VIOLATION, peer + " broke the handshake while "
                    + stage + ": " + root.getMessage(), root);
        }
        if (root instanceof IOException) {
            return new NbdException(NbdException.Kind.CONNECTION_LOST, "connection to " + peer + " failed while "
                    + stage + ": " + root.getMessage(), root);
        }
        return new NbdException(NbdException.Kind.PROTOCOL_VIOLATION, "handshake with " + peer + " failed while "
                + stage + ": " + root, root);
    }

    private void onWriteDone(Future<? super Void> f) {
        if (!f.isSuccess()) {
            fail(new NbdException(NbdException.Kind.CONNECTION_LOST, "cannot send to " + peer + " while " + stage
                    + ": " + f.cause().getMessage(), f.cause()));
        }
    }

    private void await(CompletableFuture<?> future, String what) {
        waiting = future;
        stage = what;
    }

    private NbdException violation(String what) {
        return new NbdException(NbdException.Kind.PROTOCOL_VIOLATION, peer + " sent " + what + " while " + stage);
    }
}
