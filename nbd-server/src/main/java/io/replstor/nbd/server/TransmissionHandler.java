package io.replstor.nbd.server;

import io.netty.buffer.ByteBuf;
import io.replstor.common.io.ClientGate;
import io.netty.buffer.ByteBufAllocator;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.EventLoop;
import io.replstor.nbd.Nbd;
import org.agrona.concurrent.ManyToOneConcurrentArrayQueue;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.BooleanSupplier;

/**
 * The transmission phase of one connection: decodes requests, validates them, hands them to the
 * I/O workers and writes their replies, in whatever order they complete.
 *
 * <p>Decoding is an explicit state machine over the socket's buffers. A 28-byte header is parsed in
 * place (or gathered into a small fixed buffer when it straddles two reads). A WRITE payload that
 * lies within one socket buffer is taken as a retained slice, with no copy; one that spans buffers
 * is gathered into a pooled buffer of its exact size.
 *
 * <p>Back-pressure: at most {@code maxInFlight} requests and {@link #MAX_IN_FLIGHT_BYTES} of payload
 * are served at once, and none while the socket's outbound buffer is over its high water mark.
 * Beyond that the unparsed input is kept and socket reads stop until replies drain.
 *
 * <p>Threading: everything here runs on the channel's event loop except {@link #complete}, which
 * I/O workers call; completions cross over through a bounded queue and one drain task, so replies
 * finished close together go out in one flush.
 */
final class TransmissionHandler extends ChannelInboundHandlerAdapter {
    private static final Logger LOG = LoggerFactory.getLogger(TransmissionHandler.class);
    static final long MAX_IN_FLIGHT_BYTES = 64L << 20;

    private enum State { HEADER, PAYLOAD, DISCARD, CLOSED }

    private final Executor ioExecutor;
    private final BooleanSupplier shuttingDown;
    private final NbdExport export;
    private final Session session;
    private final int transmissionFlags;
    private final int maxPayload;
    private final int maxInFlight;
    private final ServerStats stats;
    private final String peer;

    private final ByteBuf header = io.netty.buffer.Unpooled.buffer(Nbd.REQUEST_HEADER_BYTES,
            Nbd.REQUEST_HEADER_BYTES);
    private final Request[] pool;
    private int pooled;
    private final ManyToOneConcurrentArrayQueue<Request> completions;
    private final AtomicBoolean drainScheduled = new AtomicBoolean();
    private final Runnable drainTask = this::drainCompletions;

    private ChannelHandlerContext ctx;
    private EventLoop eventLoop;
    private State state = State.HEADER;
    private Request current;
    private long remaining;
    private ByteBuf pendingInput;
    private int inFlight;
    private long inFlightBytes;
    private boolean disconnectRequested;
    private volatile boolean closed;

    /**
     * @param ioExecutor   runs device operations (never the event loop)
     * @param shuttingDown true once new commands must get ESHUTDOWN
     */
    TransmissionHandler(Executor ioExecutor, BooleanSupplier shuttingDown, int maxPayload, int maxInFlight,
                        ServerStats stats, NbdExport export, Session session, String peer) {
        this.ioExecutor = ioExecutor;
        this.shuttingDown = shuttingDown;
        this.export = export;
        this.session = session;
        this.peer = peer;
        this.transmissionFlags = session.transmissionFlags(export);
        this.maxPayload = maxPayload;
        this.maxInFlight = maxInFlight;
        this.stats = stats;
        this.pool = new Request[maxInFlight];
        int cap = Integer.highestOneBit(Math.max(4, maxInFlight) * 2);
        this.completions = new ManyToOneConcurrentArrayQueue<>(cap);
    }

    NbdExport export() {
        return export;
    }

    ServerStats stats() {
        return stats;
    }

    boolean structuredReplies() {
        return session.structuredReplies;
    }

    ByteBufAllocator alloc() {
        return ctx.alloc();
    }

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
        this.ctx = ctx;
        this.eventLoop = ctx.channel().eventLoop();
        stats.connections.incrementAndGet();
        LOG.info("client {} connected to export '{}' (flags 0x{}, structured replies {}, tls {})", peer,
                export.name(), Integer.toHexString(transmissionFlags), session.structuredReplies, session.tls);
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        closeQuietly("connection closed");
        ctx.fireChannelInactive();
    }

    @Override
    public void handlerRemoved(ChannelHandlerContext ctx) {
        closeQuietly("handler removed");
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        LOG.info("client {} export '{}': connection error: {}", peer, export.name(), cause.toString());
        ctx.close();
    }

    @Override
    public void channelWritabilityChanged(ChannelHandlerContext ctx) {
        if (ctx.channel().isWritable()) {
            resumeInput();
        }
        ctx.fireChannelWritabilityChanged();
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        ByteBuf in = (ByteBuf) msg;
        if (state == State.CLOSED || disconnectRequested) {
            in.release();
            return;
        }
        if (pendingInput != null) {
            // still paused: queue behind what we have (bounded: reads are off while paused)
            pendingInput = io.netty.buffer.Unpooled.wrappedBuffer(pendingInput, in);
            return;
        }
        process(in);
    }

    /** Parses as much of {@code in} as allowed; keeps the rest when paused. Takes ownership of in. */
    private void process(ByteBuf in) {
        try {
            while (in.isReadable() && state != State.CLOSED && !disconnectRequested) {
                if (state == State.HEADER) {
                    if (paused()) {
                        pendingInput = in.retain();
                        ctx.channel().config().setAutoRead(false);
                        return;
                    }
                    if (!readHeader(in)) {
                        break;
                    }
                } else if (state == State.PAYLOAD) {
                    readPayload(in);
                } else {
                    int n = (int) Math.min(remaining, in.readableBytes());
                    in.skipBytes(n);
                    remaining -= n;
                    if (remaining == 0) {
                        state = State.HEADER;
                        replyNow(current, Nbd.EINVAL, "write payload of " + current.length
                                + " bytes is larger than the maximum " + maxPayload);
                        current = null;
                    }
                }
            }
        } finally {
            in.release();
        }
    }

    private boolean paused() {
        return inFlight >= maxInFlight || inFlightBytes >= MAX_IN_FLIGHT_BYTES || !ctx.channel().isWritable();
    }

    /** @return false if more bytes are needed */
    private boolean readHeader(ByteBuf in) {
        ByteBuf h;
        if (header.isReadable() || in.readableBytes() < Nbd.REQUEST_HEADER_BYTES) {
            header.writeBytes(in, Math.min(header.writableBytes(), in.readableBytes()));
            if (header.isWritable()) {
                return false;
            }
            h = header;
        } else {
            h = in;
        }
        int magic = h.readInt();
        int flags = h.readUnsignedShort();
        int type = h.readUnsignedShort();
        long cookie = h.readLong();
        long offset = h.readLong();
        long length = h.readUnsignedInt();
        header.clear();
        if (magic != Nbd.REQUEST_MAGIC) {
            protocolViolation("bad request magic 0x" + Integer.toHexString(magic));
            return false;
        }
        stats.requests.increment();
        Request r = acquire();
        r.type = type;
        r.flags = flags;
        r.cookie = cookie;
        r.offset = offset;
        r.length = length;
        if (type == Nbd.CMD_WRITE && length > 0) {
            current = r;
            remaining = length;
            if (length > maxPayload) {
                if (length - maxPayload > NbdServerConfig.DISCARD_LIMIT_BYTES) {
                    release(r);
                    current = null;
                    protocolViolation("write payload of " + length + " bytes is far beyond the maximum "
                            + maxPayload + "; closing instead of discarding it");
                    return false;
                }
                state = State.DISCARD;
            } else {
                state = State.PAYLOAD;
            }
            return true;
        }
        dispatch(r);
        return true;
    }

    private void readPayload(ByteBuf in) {
        Request r = current;
        if (r.payload == null && in.readableBytes() >= remaining) {
            r.payload = in.readRetainedSlice((int) remaining);
            remaining = 0;
        } else {
            if (r.payload == null) {
                r.payload = ctx.alloc().directBuffer((int) r.length);
            }
            int n = (int) Math.min(remaining, in.readableBytes());
            r.payload.writeBytes(in, n);
            remaining -= n;
        }
        if (remaining == 0) {
            state = State.HEADER;
            current = null;
            dispatch(r);
        }
    }

    /** Validates a complete request and sends it to an I/O worker, or answers it at once. */
    private void dispatch(Request r) {
        int error = validate(r);
        if (error != 0) {
            replyNow(r, error, invalidMessage(r, error));
            return;
        }
        switch (r.type) {
            case Nbd.CMD_DISC -> {
                disconnectRequested = true;
                release(r);
                LOG.info("client {} export '{}': disconnect requested", peer, export.name());
                closeWhenIdle();
                return;
            }
            case Nbd.CMD_READ, Nbd.CMD_WRITE, Nbd.CMD_TRIM, Nbd.CMD_WRITE_ZEROES, Nbd.CMD_CACHE -> {
                if (r.length == 0) {
                    replyNow(r, 0, null);
                    return;
                }
            }
            default -> {
                // FLUSH and BLOCK_STATUS go to a worker
            }
        }
        inFlight++;
        inFlightBytes += payloadBytes(r);
        try {
            ioExecutor.execute(r);
        } catch (RejectedExecutionException e) {
            inFlight--;
            inFlightBytes -= payloadBytes(r);
            if (r.payload != null) {
                r.payload.release();
                r.payload = null;
            }
            replyNow(r, Nbd.ESHUTDOWN, "server is shutting down");
        }
    }

    /** Bytes a request holds in memory while in flight: its write payload or its read reply. */
    private static long payloadBytes(Request r) {
        return r.type == Nbd.CMD_WRITE || r.type == Nbd.CMD_READ ? r.length : 0;
    }

    /** @return 0 or the errno the protocol prescribes */
    private int validate(Request r) {
        int type = r.type;
        int flags = r.flags;
        if (shuttingDown.getAsBoolean() && type != Nbd.CMD_DISC) {
            return Nbd.ESHUTDOWN;
        }
        int allowedFlags = Nbd.CMD_FLAG_FUA;
        switch (type) {
            case Nbd.CMD_READ -> allowedFlags |= session.structuredReplies ? Nbd.CMD_FLAG_DF : 0;
            case Nbd.CMD_WRITE_ZEROES -> allowedFlags |= Nbd.CMD_FLAG_NO_HOLE
                    | ((transmissionFlags & Nbd.TFLAG_SEND_FAST_ZERO) != 0 ? Nbd.CMD_FLAG_FAST_ZERO : 0);
            case Nbd.CMD_BLOCK_STATUS -> allowedFlags |= Nbd.CMD_FLAG_REQ_ONE;
            case Nbd.CMD_WRITE, Nbd.CMD_FLUSH, Nbd.CMD_TRIM, Nbd.CMD_CACHE, Nbd.CMD_DISC -> {
            }
            default -> {
                return Nbd.EINVAL;
            }
        }
        if ((flags & ~allowedFlags) != 0) {
            return Nbd.EINVAL;
        }
        boolean writeClass = type == Nbd.CMD_WRITE || type == Nbd.CMD_TRIM || type == Nbd.CMD_WRITE_ZEROES;
        if (writeClass && export.readOnly()) {
            return Nbd.EPERM;
        }
        if (type == Nbd.CMD_FLUSH && export.readOnly()) {
            return Nbd.EINVAL; // not advertised on read-only exports
        }
        if (type == Nbd.CMD_DISC || type == Nbd.CMD_FLUSH) {
            return 0;
        }
        if (type == Nbd.CMD_BLOCK_STATUS && !session.blockStatusAllowed(export)) {
            return Nbd.EINVAL;
        }
        long size = export.device().sizeBytes();
        if (r.offset < 0 || r.offset > size || r.length > size - r.offset) {
            return type == Nbd.CMD_WRITE || type == Nbd.CMD_WRITE_ZEROES ? Nbd.ENOSPC : Nbd.EINVAL;
        }
        if (type == Nbd.CMD_READ && r.length > maxPayload) {
            return Nbd.EINVAL;
        }
        if (type == Nbd.CMD_BLOCK_STATUS && r.length == 0) {
            return Nbd.EINVAL; // a reply needs at least one extent of nonzero length
        }
        return 0;
    }

    private String invalidMessage(Request r, int error) {
        long size = export.device().sizeBytes();
        return switch (error) {
            case Nbd.ESHUTDOWN -> "server is shutting down";
            case Nbd.EPERM -> "export '" + export.name() + "' is read-only";
            case Nbd.ENOSPC, Nbd.EINVAL -> {
                if (r.type > Nbd.CMD_BLOCK_STATUS) {
                    yield "unknown command " + r.type;
                }
                if (r.type == Nbd.CMD_BLOCK_STATUS && !session.blockStatusAllowed(export)) {
                    yield "BLOCK_STATUS needs SET_META_CONTEXT base:allocation for this export";
                }
                if (r.length > size || r.offset > size - r.length) {
                    yield Nbd.commandName(r.type) + " offset " + r.offset + " + length " + r.length
                            + " is beyond the end of export '" + export.name() + "' (" + size + " bytes)";
                }
                yield "invalid " + r.describe();
            }
            default -> "error " + error;
        };
    }

    /** Replies from the event loop without a worker: validation errors and zero-length requests. */
    private void replyNow(Request r, int error, String message) {
        if (error != 0) {
            stats.errors.increment();
        }
        if (r.payload != null) {
            r.payload.release();
            r.payload = null;
        }
        ByteBuf reply;
        if (error != 0) {
            reply = r.errorReply(ctx.alloc(), error, message);
        } else if (r.type == Nbd.CMD_READ && session.structuredReplies) {
            reply = r.emptyStructuredReply(ctx.alloc());
        } else {
            reply = r.simpleReply(ctx.alloc(), 0);
        }
        release(r);
        ctx.writeAndFlush(reply, ctx.voidPromise());
    }

    /** Called by an I/O worker when {@code r.reply} is ready. */
    void complete(Request r) {
        if (!completions.offer(r)) {
            // cannot happen: the queue holds more than maxInFlight; keep the reply rather than lose it
            eventLoop.execute(() -> write(r));
            return;
        }
        if (drainScheduled.compareAndSet(false, true)) {
            eventLoop.execute(drainTask);
        }
    }

    private void drainCompletions() {
        drainScheduled.set(false);
        int n = 0;
        Request r;
        while ((r = completions.poll()) != null) {
            write(r);
            n++;
        }
        if (n > 0 && !closed) {
            ctx.flush();
        }
        resumeInput();
        closeWhenIdle();
    }

    private void write(Request r) {
        inFlight--;
        inFlightBytes -= payloadBytes(r);
        ByteBuf reply = r.reply;
        r.reply = null;
        if (closed) {
            reply.release();
        } else {
            ctx.write(reply, ctx.voidPromise());
        }
        release(r);
    }

    private void resumeInput() {
        if (closed || paused() || disconnectRequested) {
            return;
        }
        if (pendingInput != null) {
            ByteBuf in = pendingInput;
            pendingInput = null;
            process(in);
            if (pendingInput != null) {
                return;
            }
        }
        if (!ctx.channel().config().isAutoRead()) {
            ctx.channel().config().setAutoRead(true);
        }
    }

    private void closeWhenIdle() {
        if (disconnectRequested && inFlight == 0 && !closed) {
            ctx.writeAndFlush(io.netty.buffer.Unpooled.EMPTY_BUFFER)
                    .addListener(io.netty.channel.ChannelFutureListener.CLOSE);
        }
    }

    /** A violation after which the stream cannot be trusted: hard disconnect. */
    private void protocolViolation(String what) {
        stats.protocolErrors.increment();
        LOG.warn("client {} export '{}': {}; disconnecting", peer, export.name(), what);
        state = State.CLOSED;
        ctx.close();
    }

    void logIoError(Request r, Exception e) {
        LOG.error("client {} export '{}': {} failed: {}", peer, export.name(), r.describe(), e.getMessage());
    }

    private Request acquire() {
        return pooled > 0 ? pool[--pooled] : new Request(this);
    }

    private void release(Request r) {
        r.reset();
        if (pooled < pool.length) {
            pool[pooled++] = r;
        }
    }

    private void releaseGate(ClientGate gate) {
        try {
            gate.release(peer);
        } catch (RuntimeException e) {
            LOG.warn("client {}: export '{}': release failed", peer, export.name(), e);
        }
    }

    private void closeQuietly(String why) {
        if (closed) {
            return;
        }
        closed = true;
        state = State.CLOSED;
        stats.connections.decrementAndGet();
        if (export.device() instanceof ClientGate gate) {
            releaseGate(gate);
        }
        if (current != null && current.payload != null) {
            current.payload.release();
            current.payload = null;
        }
        current = null;
        if (pendingInput != null) {
            pendingInput.release();
            pendingInput = null;
        }
        header.release();
        // replies of requests still at the workers are released as they complete (closed == true)
        LOG.info("client {} export '{}': {}", peer, export.name(), why);
    }
}
