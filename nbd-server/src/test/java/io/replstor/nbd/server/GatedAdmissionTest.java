package io.replstor.nbd.server;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.replstor.common.io.BlockDevice;
import io.replstor.common.io.ClientGate;
import io.replstor.common.io.FileBackingStore;
import io.replstor.common.io.StorageException;
import io.replstor.nbd.Nbd;
import io.replstor.nbd.client.NbdClient;
import io.replstor.nbd.client.NbdClientOptions;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Exports whose {@link ClientGate} answers later, on another thread: the handshake waits without
 * blocking its event loop, holds back whatever the client sends meanwhile, and owes the gate exactly
 * one release per admission, whatever happens to the connection in between. Real sockets, a server
 * with one event loop, and a leak check after every test.
 */
@Timeout(30)
class GatedAdmissionTest {
    static final long SIZE = 4 << 20;
    static final String REASON = "node b is primary for this volume; connect to b";

    @TempDir
    Path dir;
    NbdServer server;
    GatedStore gated;
    GatedStore quick;
    LeakWatcher leaks;

    @BeforeEach
    void start() throws IOException {
        leaks = new LeakWatcher();
        gated = new GatedStore(FileBackingStore.open("gated", dir.resolve("gated.img"), false, SIZE));
        quick = new GatedStore(FileBackingStore.open("quick", dir.resolve("quick.img"), false, SIZE));
        server = startServer(10);
    }

    NbdServer startServer(int handshakeTimeoutSeconds) throws IOException {
        List<NbdExport> exports = List.of(new NbdExport("gated", "", gated, List.of()),
                new NbdExport("quick", "", quick, List.of()));
        // one event loop: every connection shares it, so a blocked loop would stall them all
        return NbdServer.start(NbdServerConfig.of(new InetSocketAddress("127.0.0.1", 0), exports)
                .withHandshakeTimeout(handshakeTimeoutSeconds), 1);
    }

    @AfterEach
    void stop() throws InterruptedException {
        server.close();
        gated.close();
        quick.close();
        leaks.assertNoLeaks();
    }

    RawNbd connect() throws IOException {
        return new RawNbd(server.localAddress()).greet();
    }

    @Test
    void aGateThatAdmitsLaterGivesANormalExport() throws Exception {
        gated.answer = () -> after(300, null);
        long start = System.nanoTime();
        try (NbdClient c = NbdClient.connect(NbdClientOptions.builder().host("127.0.0.1")
                .port(server.localAddress().getPort()).exportName("gated").structuredReplies(true).build())) {
            assertTrue(System.nanoTime() - start >= TimeUnit.MILLISECONDS.toNanos(300), "GO waited for the gate");
            assertEquals(SIZE, c.sizeBytes());
            byte[] data = NbdServerProtocolTest.randomBytes(1, 64 << 10);
            c.write(1 << 20, Unpooled.wrappedBuffer(data), Nbd.CMD_FLAG_FUA).get();
            assertArrayEquals(data, read(c, 1 << 20, data.length));
        }
        awaitTrue(() -> gated.releases.get() == 1, "the admission is released when the client goes");
        assertEquals(1, gated.admissions.get());
    }

    @Test
    void exportNameWaitsForALateAdmission() throws Exception {
        gated.answer = () -> after(300, null);
        try (RawNbd c = connect()) {
            c.option(Nbd.OPT_EXPORT_NAME, "gated".getBytes());
            assertEquals(SIZE, c.in.readLong());
            c.in.readUnsignedShort(); // transmission flags; NO_ZEROES was agreed, so no padding
            c.request(0, Nbd.CMD_FLUSH, 5, 0, 0, null);
            assertEquals(0, c.simpleReply(5, null));
        }
        awaitTrue(() -> gated.releases.get() == 1, "released once");
    }

    @Test
    void aPendingAdmissionDoesNotBlockTheEventLoop() throws Exception {
        CompletableFuture<String> answer = new CompletableFuture<>();
        gated.answer = () -> answer;
        try (RawNbd waiting = connect()) {
            waiting.option(Nbd.OPT_GO, RawNbd.infoData("gated"));
            otherClientWhileWaiting(answer);
            answer.complete(null);
            waitForAck(waiting);
            byte[] data = NbdServerProtocolTest.randomBytes(3, 4096);
            waiting.request(0, Nbd.CMD_WRITE, 1, 8192, data.length, data);
            assertEquals(0, waiting.simpleReply(1, null));
        }
        awaitTrue(() -> gated.releases.get() == 1 && quick.releases.get() == 1, "each admission released once");
    }

    /** A second client on the same (only) event loop: handshake, I/O and goodbye while the first waits. */
    private void otherClientWhileWaiting(CompletableFuture<String> answer) throws Exception {
        try {
            assertTrue(gated.asked.await(5, TimeUnit.SECONDS));
            try (NbdClient other = NbdClient.connect(NbdClientOptions.builder().host("127.0.0.1")
                    .port(server.localAddress().getPort()).exportName("quick").build())) {
                byte[] data = NbdServerProtocolTest.randomBytes(2, 4096);
                other.write(0, Unpooled.wrappedBuffer(data), 0).get();
                assertArrayEquals(data, read(other, 0, 4096));
            }
            assertEquals(gated.thread, quick.thread, "both connections run on the one event loop");
            assertFalse(answer.isDone());
        } catch (Throwable t) {
            // were the loop blocked on the answer, this lets the test fail instead of hanging
            answer.complete(REASON);
            throw t;
        }
    }

    @Test
    void requestsSentBehindAPendingGoAreServedOnceAdmitted() throws Exception {
        gated.answer = () -> after(300, null);
        try (RawNbd c = connect()) {
            byte[] data = NbdServerProtocolTest.randomBytes(4, 8192);
            // GO and a WRITE in one go: the request sits in the handshake's cumulation until the gate
            // admits, then goes on to the transmission handler (a READ is sent only after the WRITE's
            // reply: NBD lets concurrent requests complete in any order)
            c.option(Nbd.OPT_GO, RawNbd.infoData("gated"));
            c.request(0, Nbd.CMD_WRITE, 1, 4096, data.length, data);
            waitForAck(c);
            assertEquals(0, c.simpleReply(1, null));
            c.request(0, Nbd.CMD_READ, 2, 4096, data.length, null);
            byte[] back = new byte[data.length];
            assertEquals(0, c.simpleReply(2, back));
            assertArrayEquals(data, back);
        }
    }

    @Test
    void aLateRefusalOfGoIsErrPolicyWithTheReasonAndOptionsSentMeanwhileFollowIt() throws Exception {
        gated.answer = () -> after(300, REASON);
        try (RawNbd c = connect()) {
            c.option(Nbd.OPT_GO, RawNbd.infoData("gated"));
            c.option(Nbd.OPT_LIST, new byte[0]); // pipelined: must be answered after the refusal, not before
            RawNbd.OptionReply refusal = c.optionReply();
            assertEquals(Nbd.OPT_GO, refusal.option());
            assertEquals(Nbd.REP_ERR_POLICY, refusal.type());
            assertTrue(refusal.text().contains(REASON), refusal.text());
            RawNbd.OptionReply r;
            while ((r = c.optionReply()).type() == Nbd.REP_SERVER) {
                assertEquals(Nbd.OPT_LIST, r.option());
            }
            assertEquals(Nbd.REP_ACK, r.type());
            c.go("quick"); // the handshake goes on after a refusal
        }
        assertEquals(0, gated.releases.get(), "nothing to release after a refusal");
    }

    @Test
    void aLateRefusalOfExportNameCloses() throws Exception {
        gated.answer = () -> after(300, REASON);
        try (RawNbd c = connect()) {
            c.option(Nbd.OPT_EXPORT_NAME, "gated".getBytes());
            assertTrue(c.closedByServer());
        }
        assertEquals(1, gated.admissions.get());
        assertEquals(0, gated.releases.get());
    }

    @Test
    void anExceptionalAnswerIsARefusalWithItsMessage() throws Exception {
        gated.answer = () -> CompletableFuture.supplyAsync(() -> {
            throw new IllegalStateException("cluster store unreachable: no quorum");
        }, delayed(100));
        try (RawNbd c = connect()) {
            c.option(Nbd.OPT_GO, RawNbd.infoData("gated"));
            RawNbd.OptionReply refusal = c.optionReply();
            assertEquals(Nbd.REP_ERR_POLICY, refusal.type());
            assertTrue(refusal.text().contains("cluster store unreachable: no quorum"), refusal.text());
            // a gate that throws instead of returning a stage is refused the same way
            gated.answer = () -> {
                throw new IllegalStateException("gate is closed");
            };
            c.option(Nbd.OPT_GO, RawNbd.infoData("gated"));
            refusal = c.optionReply();
            assertEquals(Nbd.REP_ERR_POLICY, refusal.type());
            assertTrue(refusal.text().contains("gate is closed"), refusal.text());
        }
        assertEquals(0, gated.releases.get());
    }

    @Test
    void anAdmissionAfterTheClientHasGoneIsReleasedExactlyOnce() throws Exception {
        CompletableFuture<String> answer = new CompletableFuture<>();
        gated.answer = () -> answer;
        try (RawNbd c = connect()) {
            c.option(Nbd.OPT_GO, RawNbd.infoData("gated"));
            assertTrue(gated.asked.await(5, TimeUnit.SECONDS));
        }
        awaitTrue(() -> server.connections() == 0, "the server saw the client go");
        answer.complete(null);
        awaitTrue(() -> gated.releases.get() == 1, "the late admission is released");
        Thread.sleep(200);
        assertEquals(1, gated.releases.get(), "and only once");
        assertEquals(0, server.stats(server.config().exports().get(0)).connections.get(), "no transmission began");
    }

    @Test
    void theHandshakeTimeoutStillBoundsAPendingAdmission() throws Exception {
        server.close();
        server = startServer(1);
        CompletableFuture<String> answer = new CompletableFuture<>();
        gated.answer = () -> answer;
        try (RawNbd c = connect()) {
            long start = System.nanoTime();
            c.option(Nbd.OPT_GO, RawNbd.infoData("gated"));
            assertTrue(c.closedByServer());
            long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
            assertTrue(ms >= 500 && ms < 5000, "closed by the 1 s handshake timeout after " + ms + " ms");
        }
        answer.complete(null);
        awaitTrue(() -> gated.releases.get() == 1, "the late admission is released");
    }

    @Test
    void aServerShutdownWhileAnAdmissionIsPendingClosesAndReleasesItLater() throws Exception {
        CompletableFuture<String> answer = new CompletableFuture<>();
        gated.answer = () -> answer;
        try (RawNbd c = connect()) {
            c.option(Nbd.OPT_GO, RawNbd.infoData("gated"));
            assertTrue(gated.asked.await(5, TimeUnit.SECONDS));
            server.close(); // returns once the event loops have stopped
            assertTrue(c.closedByServer());
        }
        answer.complete(null); // the loop is gone: released on this thread
        assertEquals(1, gated.releases.get());
    }

    @Test
    void aPendingAdmissionStopsReadingFromTheSocket() throws Exception {
        CompletableFuture<String> answer = new CompletableFuture<>();
        gated.answer = () -> answer;
        int total = 64 << 20; // far more than the socket buffers of both ends hold
        AtomicLong sent = new AtomicLong();
        try (RawNbd c = connect()) {
            c.option(Nbd.OPT_EXPORT_NAME, "gated".getBytes());
            assertTrue(gated.asked.await(5, TimeUnit.SECONDS));
            Thread writer = new Thread(() -> {
                byte[] chunk = new byte[64 << 10];
                try {
                    while (sent.get() < total) {
                        c.out.write(chunk);
                        sent.addAndGet(chunk.length);
                    }
                } catch (IOException expected) {
                    // the server closes the connection once it refuses
                }
            });
            writer.start();
            long settled = awaitSettled(sent);
            // what the two socket buffers hold, a few MiB; a server that kept reading into its
            // cumulation (slowly, under paranoid leak detection) would let the writer go on
            assertTrue(settled < 16 << 20, "the server kept reading while the gate decided: " + settled);
            answer.complete(REASON);
            writer.join(10_000);
            assertFalse(writer.isAlive());
        }
        assertEquals(0, gated.releases.get());
    }

    private static void waitForAck(RawNbd c) throws IOException {
        RawNbd.OptionReply r;
        while ((r = c.optionReply()).type() == Nbd.REP_INFO) {
            // every INFO reply comes before the ACK
        }
        assertEquals(Nbd.REP_ACK, r.type(), r.text());
    }

    private static byte[] read(NbdClient c, long offset, int length) throws Exception {
        ByteBuf b = c.read(offset, length, 0).get();
        try {
            byte[] out = new byte[b.readableBytes()];
            b.readBytes(out);
            return out;
        } finally {
            b.release();
        }
    }

    private static Executor delayed(long ms) {
        return CompletableFuture.delayedExecutor(ms, TimeUnit.MILLISECONDS);
    }

    /** An answer given {@code ms} later on another thread. */
    private static CompletionStage<String> after(long ms, String refusal) {
        return CompletableFuture.supplyAsync(() -> refusal, delayed(ms));
    }

    /** Waits until {@code counter} has not moved for 300 ms; returns its value. */
    private static long awaitSettled(AtomicLong counter) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        long before;
        do {
            before = counter.get();
            Thread.sleep(300);
        } while (counter.get() != before && System.nanoTime() < deadline);
        return counter.get();
    }

    private static void awaitTrue(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("not within 5 s: " + what);
            }
            Thread.sleep(10);
        }
    }

    /** A file behind a gate whose answers the test scripts; counts admissions and releases. */
    static final class GatedStore implements BlockDevice, ClientGate {
        final FileBackingStore store;
        final AtomicInteger admissions = new AtomicInteger();
        final AtomicInteger releases = new AtomicInteger();
        final CountDownLatch asked = new CountDownLatch(1);
        /** The next answer; null: the synchronous {@link #admit}. */
        volatile Supplier<CompletionStage<String>> answer;
        volatile String thread;

        GatedStore(FileBackingStore store) {
            this.store = store;
        }

        @Override
        public String admit(String client) {
            return null;
        }

        @Override
        public CompletionStage<String> admitAsync(String client) {
            admissions.incrementAndGet();
            thread = Thread.currentThread().getName();
            asked.countDown();
            Supplier<CompletionStage<String>> a = answer;
            return a == null ? ClientGate.super.admitAsync(client) : a.get();
        }

        @Override
        public void release(String client) {
            releases.incrementAndGet();
        }

        @Override
        public String name() {
            return store.name();
        }

        @Override
        public long sizeBytes() {
            return store.sizeBytes();
        }

        @Override
        public boolean readOnly() {
            return store.readOnly();
        }

        @Override
        public boolean canTrim() {
            return store.canTrim();
        }

        @Override
        public boolean canFastZero() {
            return store.canFastZero();
        }

        @Override
        public void read(long offset, int length, ByteBuf dst) throws StorageException {
            store.read(offset, length, dst);
        }

        @Override
        public void write(long offset, ByteBuf src, boolean fua) throws StorageException {
            store.write(offset, src, fua);
        }

        @Override
        public void flush() throws StorageException {
            store.flush();
        }

        @Override
        public void trim(long offset, long length, boolean fua) throws StorageException {
            store.trim(offset, length, fua);
        }

        @Override
        public void writeZeroes(long offset, long length, boolean noHole, boolean fastOnly, boolean fua)
                throws StorageException {
            store.writeZeroes(offset, length, noHole, fastOnly, fua);
        }

        @Override
        public void cache(long offset, long length) throws StorageException {
            store.cache(offset, length);
        }

        @Override
        public void extents(long offset, long length, ExtentSink sink) throws StorageException {
            store.extents(offset, length, sink);
        }

        @Override
        public void close() {
            store.close();
        }
    }
}
