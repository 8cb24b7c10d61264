package io.replstor.nbd.client;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.DecoderException;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.ReferenceCounted;
import io.replstor.nbd.Nbd;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import javax.net.ssl.SSLException;
import org.agrona.collections.Long2ObjectHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The transmission phase: assigns cookies, writes request headers (and WRITE data), matches replies to requests
 * by cookie in whatever order they come, and fails everything in flight when the connection goes.
 *
 * <p>All state is confined to the event loop; {@link NbdClient} hands requests over with {@code execute}.
 * A request is registered before its header is written, so its reply always finds it. Cookies count up from 1;
 * raw bytes sent with {@link #sendRaw} should use cookies with the top bit set to stay clear of them.
 * Writes are flushed once per batch of submissions rather than once per request.
 *
 * <p>Close: after {@link #beginClose()} new requests fail with {@link NbdException.Kind#CLOSED}; once nothing is
 * in flight the handler sends DISC and closes the channel.
 */
final class TransmissionHandler extends ChannelInboundHandlerAdapter implements ReplyDecoder.RequestLookup {
    private static final Logger LOG = LoggerFactory.getLogger(TransmissionHandler.class);

    private final String where;
    private final Long2ObjectHashMap<PendingRequest> inFlight = new Long2ObjectHashMap<>();
    private final CompletableFuture<Void> closed = new CompletableFuture<>();
    private final Runnable flushTask = this::flushNow;
    private ChannelHandlerContext ctx;
    private long nextCookie = 1;
    private boolean flushScheduled;
    private boolean closing;
    private boolean discSent;
    /** Why the connection is unusable; written on the event loop, read by {@link NbdClient} after it ended. */
    private volatile NbdException failure;
    private volatile long unmatchedReplies;

    TransmissionHandler(String where) {
        this.where = where;
    }

    /** Completes when the channel is gone. */
    CompletableFuture<Void> closed() {
        return closed;
    }

    /** Why the connection ended (or null while it is up). */
    NbdException failure() {
        return failure;
    }

    /** Replies whose cookie matched no request in flight (dropped). */
    long unmatchedReplies() {
        return unmatchedReplies;
    }

    /** On the event loop: registers and writes the request; takes ownership of {@code payload} (may be null). */
    void submit(PendingRequest request, ByteBuf payload) {
        NbdException refusal = failure != null ? failure : closing ? closedError() : null;
        if (refusal != null) {
            ReferenceCountUtil.release(payload);
            request.fail(refusal);
            return;
        }
        long cookie = nextCookie++;
        request.cookie = cookie;
        ByteBuf header;
        try {
            header = RequestHeader.write(ctx.alloc().buffer(Nbd.REQUEST_HEADER_BYTES), request.flags, request.type,
                    cookie, request.offset, request.length);
        } catch (RuntimeException | Error e) {
            ReferenceCountUtil.release(payload);
            request.fail(e);
            return;
        }
        inFlight.put(cookie, request);
        // A failed write fires exceptionCaught through the void promise, which closes and fails everything.
        ctx.write(header, ctx.voidPromise());
        if (payload != null) {
            ctx.write(payload, ctx.voidPromise());
        }
        scheduleFlush();
    }

    /** On the event loop: writes {@code raw} as is (taking ownership), for fuzzing servers. */
    void sendRaw(ByteBuf raw, CompletableFuture<Void> written) {
        if (failure != null || closing) {
            raw.release();
            written.completeExceptionally(failure != null ? failure : closedError());
            return;
        }
        ctx.writeAndFlush(raw).addListener(f -> {
            if (f.isSuccess()) {
                written.complete(null);
            } else {
                written.completeExceptionally(new NbdException(NbdException.Kind.CONNECTION_LOST,
                        "cannot send raw bytes to " + where + ": " + f.cause().getMessage(), f.cause()));
            }
        });
    }

    /** On the event loop: no new requests; DISC and close once the in-flight ones are answered. */
    void beginClose() {
        closing = true;
        sendDiscIfIdle();
    }

    /** On the event loop: closes now; in-flight requests fail. */
    void abortNow() {
        ctx.close();
    }

    @Override
    public int readLength(long cookie) {
        PendingRequest request = inFlight.get(cookie);
        return request != null && request.type == Nbd.CMD_READ ? (int) request.length : -1;
    }

    @Override
    public void handlerAdded(ChannelHandlerContext context) {
        ctx = context;
    }

    @Override
    public void channelRead(ChannelHandlerContext context, Object msg) {
        if (msg instanceof SimpleReply reply) {
            // Removed before completing: a callback that submits or closes sees a consistent table.
            PendingRequest request = inFlight.remove(reply.cookie());
            if (request == null) {
                unmatched(reply);
            } else {
                request.onSimpleReply(reply);
            }
        } else if (msg instanceof ReplyChunk chunk) {
            PendingRequest request = inFlight.get(chunk.cookie());
            if (request == null) {
                unmatched(chunk);
                return;
            }
            boolean done = chunk.done();
            request.onChunk(chunk);
            if (done) {
                inFlight.remove(chunk.cookie());
                request.finish(context.alloc());
            }
        } else {
            context.fireChannelRead(msg);
            return;
        }
        sendDiscIfIdle();
    }

    @Override
    public void channelInactive(ChannelHandlerContext context) throws Exception {
        if (failure == null) {
            failure = inFlight.isEmpty() && (closing || discSent)
                    ? closedError()
                    : new NbdException(NbdException.Kind.CONNECTION_LOST, "connection to " + where + " closed with "
                    + inFlight.size() + " request(s) in flight");
        }
        if (!inFlight.isEmpty()) {
            LOG.warn("connection to {} lost with {} request(s) in flight: {}", where, inFlight.size(),
                    failure.getMessage());
        }
        failAll(failure);
        closed.complete(null);
        super.channelInactive(context);
    }

    @Override
    public void handlerRemoved(ChannelHandlerContext context) {
        if (failure == null) {
            failure = new NbdException(NbdException.Kind.CONNECTION_LOST, "the client for " + where
                    + " was removed from its channel");
        }
        failAll(failure);
        closed.complete(null);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext context, Throwable cause) {
        if (failure == null) {
            failure = translate(cause);
            LOG.warn("closing the connection to {}: {}", where, failure.getMessage());
        }
        context.close();
    }

    private NbdException translate(Throwable cause) {
        Throwable root = cause instanceof DecoderException && cause.getCause() != null ? cause.getCause() : cause;
        if (root instanceof SSLException) {
            return new NbdException(NbdException.Kind.TLS, "TLS with " + where + " failed: " + root.getMessage(),
                    root);
        }
        if (cause instanceof DecoderException) {
            return new NbdException(NbdException.Kind.PROTOCOL_VIOLATION, where + " sent a reply that cannot be "
                    + "decoded: " + root.getMessage(), root);
        }
        if (root instanceof IOException) {
            return new NbdException(NbdException.Kind.CONNECTION_LOST, "connection to " + where + " failed: "
                    + root.getMessage(), root);
        }
        return new NbdException(NbdException.Kind.CONNECTION_LOST, "connection to " + where + " failed: " + root,
                root);
    }

    private void failAll(NbdException cause) {
        if (inFlight.isEmpty()) {
            return;
        }
        // Copy first: failing a future runs callbacks that may submit (and be refused) or close.
        List<PendingRequest> requests = new ArrayList<>(inFlight.values());
        inFlight.clear();
        for (PendingRequest request : requests) {
            request.fail(cause);
        }
    }

    private void unmatched(ReferenceCounted reply) {
        unmatchedReplies++;
        LOG.debug("dropping {} from {}: no request in flight has that cookie", reply, where);
        reply.release();
    }

    private void scheduleFlush() {
        if (!flushScheduled) {
            flushScheduled = true;
            ctx.executor().execute(flushTask);
        }
    }

    private void flushNow() {
        flushScheduled = false;
        ctx.flush();
    }

    private void sendDiscIfIdle() {
        if (!closing || discSent || !inFlight.isEmpty() || failure != null) {
            return;
        }
        discSent = true;
        ByteBuf disc = RequestHeader.write(ctx.alloc().buffer(Nbd.REQUEST_HEADER_BYTES), 0, Nbd.CMD_DISC,
                nextCookie++, 0, 0);
        ctx.writeAndFlush(disc).addListener(ChannelFutureListener.CLOSE);
    }

    private NbdException closedError() {
        return new NbdException(NbdException.Kind.CLOSED, "the client for " + where + " is closed");
    }
}
