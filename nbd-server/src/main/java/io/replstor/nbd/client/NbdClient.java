package io.replstor.nbd.client;

import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.channel.EventLoopGroup;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.ScheduledFuture;
import io.replstor.nbd.Nbd;
import java.time.Duration;
import java.util.List;
import java.util.Objects;
import java.util.OptionalInt;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An asynchronous NBD client over Netty: fixed-newstyle handshake (optionally STARTTLS, structured replies and
 * meta contexts, then GO, or EXPORT_NAME on old servers), then pipelined commands matched by cookie.
 *
 * <p>Commands return futures that complete on the client's event loop, so dependent stages must not block
 * (use the {@code ...Async} variants to move work elsewhere). Many requests may be in flight; the caller bounds
 * its own queue depth. The client checks neither the transmission flags nor the export bounds, so tests can
 * probe how a server handles bad requests; well-behaved callers consult {@link #transmissionFlags()} and
 * {@link #sizeBytes()}, and honour {@link #blockSizeMin()} and {@link #blockSizeMaxPayload()}.
 *
 * <p>Errors: an error reply fails the future with {@link NbdException} ({@link NbdException.Kind#ERROR_REPLY},
 * {@link NbdException#errno()}, {@link NbdException#serverMessage()}); losing the connection fails every
 * request in flight ({@link NbdException.Kind#CONNECTION_LOST}).
 *
 * <p>Buffers: {@link #read} hands the caller a buffer to release; {@link #write} and {@link #sendRaw} take
 * ownership of theirs, also when they fail.
 */
public final class NbdClient implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(NbdClient.class);
    /** Blocking calls wait this much longer than the client's own timers, which fire first. */
    private static final long GRACE_MILLIS = 1000;
    private static final long MAX_U32 = 0xffffffffL;

    private final Channel channel;
    private final TransmissionHandler handler;
    private final Handshake.Negotiated negotiated;
    private final NbdClientOptions opts;
    private final EventLoopGroup ownGroup;
    private final String where;
    private final AtomicBoolean closeStarted = new AtomicBoolean();
    private final CompletableFuture<Void> closeDone = new CompletableFuture<>();

    private NbdClient(Channel channel, TransmissionHandler handler, Handshake.Negotiated negotiated,
                      NbdClientOptions opts, EventLoopGroup ownGroup) {
        this.channel = channel;
        this.handler = handler;
        this.negotiated = negotiated;
        this.opts = opts;
        this.ownGroup = ownGroup;
        this.where = where(opts);
        handler.closed().whenComplete((v, e) -> {
            shutdown(ownGroup);
            closeDone.complete(null);
        });
    }

    /** Connects and negotiates, waiting at most about {@link NbdClientOptions#timeout()}. */
    public static NbdClient connect(NbdClientOptions opts) throws NbdException {
        return await(connectAsync(opts), opts.timeout(), "connecting to " + where(opts));
    }

    /** Connects and negotiates; the future fails with {@link NbdException}. */
    public static CompletableFuture<NbdClient> connectAsync(NbdClientOptions opts) {
        TransmissionHandler handler = new TransmissionHandler(where(opts));
        return negotiate(opts, true, (handshake, channel, ownGroup) -> handshake.toTransmission(handler)
                .thenApply(negotiated -> {
                    LOG.debug("connected to {}: {} bytes, flags 0x{}, structured replies {}, TLS {}, contexts {}",
                            where(opts), negotiated.export().sizeBytes(),
                            Integer.toHexString(negotiated.export().transmissionFlags()),
                            negotiated.structuredReplies(), negotiated.tls(), negotiated.metaContexts());
                    return new NbdClient(channel, handler, negotiated, opts, ownGroup);
                }));
    }

    /** Lists the server's exports ({@code NBD_OPT_LIST}), then ends with {@code NBD_OPT_ABORT}. */
    public static List<ExportEntry> list(String host, int port, NbdClientOptions opts) throws NbdException {
        NbdClientOptions target = opts.withAddress(host, port);
        return await(negotiate(target, false, (handshake, channel, ownGroup) ->
                thenAbort(handshake, handshake.list())), target.timeout(), "listing exports of " + host + ":" + port);
    }

    /** Describes one export ({@code NBD_OPT_INFO}), then ends with {@code NBD_OPT_ABORT}. */
    public static ExportInfo info(String host, int port, String exportName, NbdClientOptions opts)
            throws NbdException {
        NbdClientOptions target = opts.withAddress(host, port).withExportName(exportName);
        return await(negotiate(target, false, (handshake, channel, ownGroup) ->
                        thenAbort(handshake, handshake.info(exportName))), target.timeout(),
                "asking " + where(target) + " for INFO");
    }

    /**
     * Reads {@code length} bytes at {@code offset} ({@code flags}: e.g. {@link Nbd#CMD_FLAG_DF}). The caller
     * releases the buffer. Structured replies are assembled; holes read as zeroes.
     */
    public CompletableFuture<ByteBuf> read(long offset, int length, int flags) {
        checkFlags(flags);
        if (length < 0) {
            throw new IllegalArgumentException("read length is negative: " + length);
        }
        ReadRequest request = new ReadRequest(where, flags, offset, length);
        submit(request, null);
        return request.future();
    }

    /** Writes the readable bytes of {@code data}, taking ownership of it ({@code flags}: e.g. FUA). */
    public CompletableFuture<Void> write(long offset, ByteBuf data, int flags) {
        Objects.requireNonNull(data, "data");
        try {
            checkFlags(flags);
        } catch (IllegalArgumentException e) {
            data.release();
            throw e;
        }
        CommandRequest request = new CommandRequest(where, Nbd.CMD_WRITE, flags, offset, data.readableBytes());
        submit(request, data);
        return request.future();
    }

    /** Completes once every write already answered is on stable storage. */
    public CompletableFuture<Void> flush() {
        return command(Nbd.CMD_FLUSH, 0, 0, 0);
    }

    public CompletableFuture<Void> trim(long offset, long length, int flags) {
        return command(Nbd.CMD_TRIM, flags, offset, length);
    }

    /** {@code flags}: {@link Nbd#CMD_FLAG_NO_HOLE}, {@link Nbd#CMD_FLAG_FAST_ZERO}, FUA. */
    public CompletableFuture<Void> writeZeroes(long offset, long length, int flags) {
        return command(Nbd.CMD_WRITE_ZEROES, flags, offset, length);
    }

    public CompletableFuture<Void> cache(long offset, long length) {
        return command(Nbd.CMD_CACHE, 0, offset, length);
    }

    /**
     * The {@code base:allocation} extents from {@code offset}; the server may cover less than {@code length}, or
     * more with the last extent unless {@link Nbd#CMD_FLAG_REQ_ONE} is set. Needs {@code base:allocation} in
     * {@link NbdClientOptions#metaContexts()}; without it the request is still sent, to test servers.
     */
    public CompletableFuture<List<Extent>> blockStatus(long offset, long length, int flags) {
        checkFlags(flags);
        checkU32(length);
        Integer id = negotiated.metaContexts().get(Nbd.BASE_ALLOCATION);
        BlockStatusRequest request = new BlockStatusRequest(where, flags, offset, length, id != null,
                id == null ? 0 : id);
        submit(request, null);
        return request.future();
    }

    /**
     * Writes {@code raw} on the connection as is, taking ownership: a hook for fuzzing servers. Replies to
     * cookies the client did not assign are counted ({@link #unmatchedReplies()}) and dropped; use cookies with
     * the top bit set. A server that disconnects completes {@link #closeFuture()}.
     */
    public CompletableFuture<Void> sendRaw(ByteBuf raw) {
        Objects.requireNonNull(raw, "raw");
        CompletableFuture<Void> written = new CompletableFuture<>();
        onEventLoop(() -> handler.sendRaw(raw, written), () -> {
            raw.release();
            written.completeExceptionally(closedError());
        });
        return written;
    }

    /**
     * Stops taking requests, waits for those in flight, sends DISC and closes; after
     * {@link NbdClientOptions#timeout()} it closes anyway, failing what is still in flight.
     */
    public CompletableFuture<Void> closeAsync() {
        if (closeStarted.compareAndSet(false, true)) {
            onEventLoop(() -> {
                handler.beginClose();
                ScheduledFuture<?> force = channel.eventLoop().schedule(() -> {
                    LOG.warn("{} did not finish closing within {}; closing the connection", where, opts.timeout());
                    handler.abortNow();
                }, opts.timeout().toMillis(), TimeUnit.MILLISECONDS);
                closeDone.whenComplete((v, e) -> force.cancel(false));
            }, () -> closeDone.complete(null));
        }
        return closeDone;
    }

    /** {@link #closeAsync()}, waiting for it unless called on the client's own event loop. */
    @Override
    public void close() {
        CompletableFuture<Void> done = closeAsync();
        if (channel.eventLoop().inEventLoop()) {
            return;
        }
        try {
            done.get(opts.timeout().toMillis() + GRACE_MILLIS, TimeUnit.MILLISECONDS);
            if (ownGroup != null) {
                ownGroup.terminationFuture().await(GRACE_MILLIS, TimeUnit.MILLISECONDS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (ExecutionException | TimeoutException e) {
            LOG.warn("closing the connection to {} failed: {}", where, e.toString());
            channel.close();
        }
    }

    /** Completes when the connection is gone, whoever closed it. */
    public CompletableFuture<Void> closeFuture() {
        return closeDone;
    }

    public boolean isOpen() {
        return channel.isActive();
    }

    public ExportInfo exportInfo() {
        return negotiated.export();
    }

    public long sizeBytes() {
        return negotiated.export().sizeBytes();
    }

    public int transmissionFlags() {
        return negotiated.export().transmissionFlags();
    }

    /** Whether transmission flag {@code tflag} ({@code Nbd.TFLAG_*}) is set. */
    public boolean has(int tflag) {
        return negotiated.export().has(tflag);
    }

    public boolean structuredReplies() {
        return negotiated.structuredReplies();
    }

    public boolean tls() {
        return negotiated.tls();
    }

    public int blockSizeMin() {
        return negotiated.export().blockSizeMin();
    }

    public int blockSizePreferred() {
        return negotiated.export().blockSizePreferred();
    }

    /** u32; 0xffffffff means no limit. */
    public long blockSizeMaxPayload() {
        return negotiated.export().blockSizeMaxPayload();
    }

    public String description() {
        return negotiated.export().description();
    }

    /** The id the server gave meta context {@code name} in SET_META_CONTEXT, if it selected it. */
    public OptionalInt metaContextId(String name) {
        Integer id = negotiated.metaContexts().get(name);
        return id == null ? OptionalInt.empty() : OptionalInt.of(id);
    }

    /** Replies the server sent for cookies the client did not have in flight (dropped). */
    public long unmatchedReplies() {
        return handler.unmatchedReplies();
    }

    @Override
    public String toString() {
        return "NbdClient[" + where + "]";
    }

    private CompletableFuture<Void> command(int type, int flags, long offset, long length) {
        checkFlags(flags);
        checkU32(length);
        CommandRequest request = new CommandRequest(where, type, flags, offset, length);
        submit(request, null);
        return request.future();
    }

    private void submit(PendingRequest request, ByteBuf payload) {
        onEventLoop(() -> handler.submit(request, payload), () -> {
            ReferenceCountUtil.release(payload);
            request.fail(closedError());
        });
    }

    /** Runs {@code task} on the event loop, or {@code rejected} here if the loop is shut down. */
    private void onEventLoop(Runnable task, Runnable rejected) {
        EventLoop loop = channel.eventLoop();
        if (loop.inEventLoop()) {
            task.run();
            return;
        }
        try {
            loop.execute(task);
        } catch (RejectedExecutionException e) {
            rejected.run();
        }
    }

    /** For requests the event loop no longer takes: why the connection ended, if known. */
    private NbdException closedError() {
        NbdException failure = handler.failure();
        return failure != null ? failure
                : new NbdException(NbdException.Kind.CLOSED, "the client for " + where + " is closed");
    }

    private static void checkFlags(int flags) {
        if ((flags & ~0xffff) != 0) {
            throw new IllegalArgumentException("command flags are a u16: 0x" + Integer.toHexString(flags));
        }
    }

    private static void checkU32(long length) {
        if (length < 0 || length > MAX_U32) {
            throw new IllegalArgumentException("length must fit a u32: " + length);
        }
    }

    private static String where(NbdClientOptions opts) {
        return opts.host() + ":" + opts.port() + " (export '" + opts.exportName() + "')";
    }

    // ---- connection set-up shared by connect, list and info ----

    private interface Plan<T> {
        CompletableFuture<T> run(Handshake handshake, Channel channel, EventLoopGroup ownGroup);
    }

    /** Runs {@code step}, then ABORT whatever its outcome, then yields the outcome of {@code step}. */
    private static <T> CompletableFuture<T> thenAbort(Handshake handshake, CompletableFuture<T> step) {
        return step.handle((value, error) -> handshake.abort()
                        .thenCompose(v -> error == null
                                ? CompletableFuture.completedFuture(value)
                                : CompletableFuture.<T>failedFuture(unwrap(error))))
                .thenCompose(f -> f);
    }

    /**
     * Connects and runs {@code plan} under the handshake timeout. With {@code keepOpen} a successful plan keeps
     * the channel (and the client's own event loop group); otherwise both are closed when the plan ends.
     */
    private static <T> CompletableFuture<T> negotiate(NbdClientOptions opts, boolean keepOpen, Plan<T> plan) {
        long deadlineNanos = System.nanoTime() + opts.timeout().toNanos();
        EventLoopGroup ownGroup = opts.eventLoopGroup() == null ? Transport.newGroup(1) : null;
        EventLoopGroup group = ownGroup != null ? ownGroup : opts.eventLoopGroup();
        String peer = opts.host() + ":" + opts.port();
        CompletableFuture<T> result = new CompletableFuture<>();
        ChannelFuture connected;
        try {
            connected = new Bootstrap()
                    .group(group)
                    .channel(Transport.channelClass(group))
                    .option(ChannelOption.TCP_NODELAY, true)
                    .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, (int) Math.min(Integer.MAX_VALUE,
                            opts.timeout().toMillis()))
                    .handler(new ChannelInitializer<Channel>() {
                        @Override
                        protected void initChannel(Channel ch) {
                            OptionReplyDecoder decoder = new OptionReplyDecoder();
                            ch.pipeline().addLast("nbd-option-replies", decoder)
                                    .addLast("nbd-handshake", new OptionNegotiator(peer, decoder));
                        }
                    })
                    .connect(opts.host(), opts.port());
        } catch (RuntimeException e) {
            shutdown(ownGroup);
            return CompletableFuture.failedFuture(new NbdException(NbdException.Kind.CONNECTION_LOST,
                    "cannot connect to " + peer + ": " + e.getMessage(), e));
        }
        Channel channel = connected.channel();
        connected.addListener(f -> {
            if (!f.isSuccess()) {
                result.completeExceptionally(new NbdException(NbdException.Kind.CONNECTION_LOST,
                        "cannot connect to " + peer + ": " + f.cause().getMessage(), f.cause()));
                return;
            }
            OptionNegotiator negotiator = channel.pipeline().get(OptionNegotiator.class);
            long remainingNanos = Math.max(0, deadlineNanos - System.nanoTime());
            ScheduledFuture<?> timer = channel.eventLoop().schedule(() -> negotiator.fail(new NbdException(
                    NbdException.Kind.TIMEOUT, "the handshake with " + peer + " did not finish within "
                    + opts.timeout().toMillis() + " ms; it was " + negotiator.stage())),
                    remainingNanos, TimeUnit.NANOSECONDS);
            plan.run(new Handshake(negotiator, opts, channel.alloc()), channel, ownGroup).whenComplete((value, e) -> {
                timer.cancel(false);
                if (e != null) {
                    result.completeExceptionally(unwrap(e));
                } else if (!result.complete(value) && value instanceof AutoCloseable) {
                    // The blocking caller gave up (timeout, interrupt) just as the handshake finished.
                    channel.close();
                }
            });
        });
        result.whenComplete((value, e) -> {
            if (e != null || !keepOpen) {
                channel.close().addListener(f -> shutdown(ownGroup));
            }
        });
        return result;
    }

    private static void shutdown(EventLoopGroup ownGroup) {
        if (ownGroup != null) {
            ownGroup.shutdownGracefully(0, GRACE_MILLIS, TimeUnit.MILLISECONDS);
        }
    }

    private static <T> T await(CompletableFuture<T> future, Duration timeout, String what) throws NbdException {
        try {
            return future.get(timeout.toMillis() + GRACE_MILLIS, TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            throw unwrap(e.getCause()).rethrown();
        } catch (TimeoutException e) {
            NbdException timedOut = new NbdException(NbdException.Kind.TIMEOUT, what + " did not finish within "
                    + timeout.toMillis() + " ms");
            future.completeExceptionally(timedOut);
            throw timedOut;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            NbdException interrupted = new NbdException(NbdException.Kind.INTERRUPTED, what + " was interrupted");
            future.completeExceptionally(interrupted);
            throw interrupted;
        }
    }

    private static NbdException unwrap(Throwable error) {
        Throwable cause = error;
        while ((cause instanceof CompletionException || cause instanceof ExecutionException)
                && cause.getCause() != null) {
            cause = cause.getCause();
        }
        return cause instanceof NbdException nbd ? nbd
                : new NbdException(NbdException.Kind.CONNECTION_LOST, cause.toString(), cause);
    }
}
