package io.replstor.nbd.client;

import static io.replstor.nbd.client.ClientTestSupport.await;
import static io.replstor.nbd.client.ClientTestSupport.buffer;
import static io.replstor.nbd.client.ClientTestSupport.failure;
import static io.replstor.nbd.client.ClientTestSupport.pattern;
import static io.replstor.nbd.client.ClientTestSupport.readBytes;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.replstor.nbd.Nbd;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The client against {@code nbdkit memory 64M}, a fresh server per test. */
@ExtendWith(LeakCheck.class)
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class NbdClientMemoryTest {
    private static final long SIZE = 64L << 20;

    @TempDir
    Path dir;
    private Nbdkit server;

    @BeforeEach
    void startServer() throws Exception {
        server = Nbdkit.start(dir, List.of(), "memory", "64M");
    }

    @AfterEach
    void stopServer() throws Exception {
        server.close();
    }

    private NbdClientOptions.Builder options() {
        return NbdClientOptions.builder().host(Nbdkit.HOST).port(server.port()).timeout(Duration.ofSeconds(10));
    }

    private NbdClient connect(boolean structured) throws NbdException {
        return NbdClient.connect(options().structuredReplies(structured)
                .metaContexts(List.of(Nbd.BASE_ALLOCATION)).build());
    }

    @Test
    void handshakeWithStructuredRepliesSelectsBaseAllocation() throws Exception {
        try (NbdClient client = connect(true)) {
            assertEquals(SIZE, client.sizeBytes());
            assertTrue(client.structuredReplies());
            assertTrue(client.metaContextId(Nbd.BASE_ALLOCATION).isPresent());
            for (int flag : new int[] {Nbd.TFLAG_HAS_FLAGS, Nbd.TFLAG_SEND_FLUSH, Nbd.TFLAG_SEND_FUA,
                    Nbd.TFLAG_SEND_TRIM, Nbd.TFLAG_SEND_WRITE_ZEROES, Nbd.TFLAG_SEND_DF, Nbd.TFLAG_CAN_MULTI_CONN}) {
                assertTrue(client.has(flag), "flag 0x" + Integer.toHexString(flag) + " in 0x"
                        + Integer.toHexString(client.transmissionFlags()));
            }
            assertFalse(client.has(Nbd.TFLAG_READ_ONLY));
            // nbdkit memory sends no INFO_BLOCK_SIZE: the protocol defaults apply.
            assertFalse(client.exportInfo().blockSizeAdvertised());
            assertEquals(1, client.blockSizeMin());
            assertEquals(4096, client.blockSizePreferred());
            assertEquals(32L << 20, client.blockSizeMaxPayload());
            assertFalse(client.tls());
        }
    }

    @Test
    void handshakeWithoutStructuredRepliesHasNoContextsAndNoDf() throws Exception {
        try (NbdClient client = connect(false)) {
            assertEquals(SIZE, client.sizeBytes());
            assertFalse(client.structuredReplies());
            assertTrue(client.metaContextId(Nbd.BASE_ALLOCATION).isEmpty());
            // DF may only be advertised once structured replies are negotiated.
            assertFalse(client.has(Nbd.TFLAG_SEND_DF));
        }
    }

    @ParameterizedTest(name = "structured replies {0}")
    @ValueSource(booleans = {true, false})
    void writtenPatternReadsBack(boolean structured) throws Exception {
        byte[] data = pattern(7, 1 << 20);
        long offset = (3L << 20) + 512;
        try (NbdClient client = connect(structured)) {
            await(client.write(offset, buffer(data), 0));
            assertArrayEquals(data, readBytes(client, offset, data.length));
            // A read straddling the start of the written range: never-written bytes read as zeroes.
            byte[] straddle = readBytes(client, offset - 4096, 8192);
            assertArrayEquals(new byte[4096], java.util.Arrays.copyOfRange(straddle, 0, 4096));
            assertArrayEquals(java.util.Arrays.copyOfRange(data, 0, 4096),
                    java.util.Arrays.copyOfRange(straddle, 4096, 8192));
        }
    }

    @Test
    void fuaWriteIsVisibleOnAnotherConnection() throws Exception {
        byte[] data = pattern(11, 64 * 1024);
        try (NbdClient writer = connect(true); NbdClient reader = connect(true)) {
            assertTrue(writer.has(Nbd.TFLAG_SEND_FUA));
            await(writer.write(1 << 20, buffer(data), Nbd.CMD_FLAG_FUA));
            assertArrayEquals(data, readBytes(reader, 1 << 20, data.length));
        }
    }

    @Test
    void flushAfterWritesSucceeds() throws Exception {
        try (NbdClient client = connect(true)) {
            List<CompletableFuture<Void>> writes = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                writes.add(client.write(i * 65536L, buffer(pattern(i, 65536)), 0));
            }
            await(CompletableFuture.allOf(writes.toArray(CompletableFuture[]::new)));
            await(client.flush());
            assertArrayEquals(pattern(3, 65536), readBytes(client, 3 * 65536L, 65536));
        }
    }

    @Test
    void trimmedRangeReadsAsZeroesOnNbdkitMemory() throws Exception {
        try (NbdClient client = connect(true)) {
            await(client.write(0, buffer(pattern(5, 1 << 20)), 0));
            await(client.trim(256 * 1024, 512 * 1024, 0));
            // The protocol leaves trimmed contents undefined; nbdkit's memory plugin zeroes them.
            assertArrayEquals(new byte[512 * 1024], readBytes(client, 256 * 1024, 512 * 1024));
            assertArrayEquals(java.util.Arrays.copyOfRange(pattern(5, 1 << 20), 0, 256 * 1024),
                    readBytes(client, 0, 256 * 1024));
        }
    }

    @ParameterizedTest(name = "flags {0}")
    @ValueSource(ints = {0, Nbd.CMD_FLAG_NO_HOLE, Nbd.CMD_FLAG_FUA})
    void writeZeroesZeroesTheRange(int flags) throws Exception {
        try (NbdClient client = connect(true)) {
            byte[] data = pattern(9, 256 * 1024);
            await(client.write(8 << 20, buffer(data), 0));
            await(client.writeZeroes((8 << 20) + 4096, 128 * 1024, flags));
            byte[] back = readBytes(client, 8 << 20, data.length);
            java.util.Arrays.fill(data, 4096, 4096 + 128 * 1024, (byte) 0);
            assertArrayEquals(data, back);
        }
    }

    @Test
    void cacheSucceeds() throws Exception {
        try (NbdClient client = connect(true)) {
            assertTrue(client.has(Nbd.TFLAG_SEND_CACHE));
            await(client.cache(0, 1 << 20));
        }
    }

    @Test
    void blockStatusSeparatesWrittenDataFromHoles() throws Exception {
        try (NbdClient client = connect(true)) {
            await(client.write(1 << 20, buffer(pattern(1, 64 * 1024)), 0));
            List<Extent> extents = await(client.blockStatus(0, 4 << 20, 0));
            assertEquals(Nbd.STATE_HOLE | Nbd.STATE_ZERO, flagsAt(extents, 0, 0));
            assertEquals(0, flagsAt(extents, 0, 1 << 20) & Nbd.STATE_HOLE);
            assertEquals(Nbd.STATE_HOLE | Nbd.STATE_ZERO, flagsAt(extents, 0, (2 << 20) + 4096));
        }
    }

    @ParameterizedTest(name = "structured replies {0}")
    @ValueSource(booleans = {true, false})
    void readBeyondTheEndFailsWithEinvalAndTheConnectionStaysUsable(boolean structured) throws Exception {
        try (NbdClient client = connect(structured)) {
            NbdException e = failure(client.read(SIZE - 4096, 8192, 0));
            assertEquals(NbdException.Kind.ERROR_REPLY, e.kind());
            assertEquals(Nbd.EINVAL, e.errno(), e.getMessage());
            assertTrue(e.getMessage().contains("READ") && e.getMessage().contains("EINVAL")
                    && e.getMessage().contains(Nbdkit.HOST + ":" + server.port()), e.getMessage());
            assertEquals(4096, readBytes(client, SIZE - 4096, 4096).length);
        }
    }

    @Test
    void writeBeyondTheEndFailsWithEnospc() throws Exception {
        try (NbdClient client = connect(true)) {
            NbdException e = failure(client.write(SIZE - 512, buffer(pattern(2, 4096)), 0));
            assertEquals(Nbd.ENOSPC, e.errno(), e.getMessage());
        }
    }

    @ParameterizedTest(name = "structured replies {0}")
    @ValueSource(booleans = {true, false})
    void manyPipelinedWritesThenReadsKeepTheirData(boolean structured) throws Exception {
        int count = 256;
        int blockBytes = 4096;
        try (NbdClient client = connect(structured)) {
            List<CompletableFuture<Void>> writes = new ArrayList<>();
            for (int i = 0; i < count; i++) {
                // Scattered offsets so neighbouring requests do not touch the same pages.
                long offset = (long) ((i * 37) % count) * 3 * blockBytes;
                writes.add(client.write(offset, buffer(pattern(i, blockBytes)), 0));
            }
            await(CompletableFuture.allOf(writes.toArray(CompletableFuture[]::new)));
            List<CompletableFuture<ByteBuf>> reads = new ArrayList<>();
            for (int i = 0; i < count; i++) {
                reads.add(client.read((long) ((i * 37) % count) * 3 * blockBytes, blockBytes, 0));
            }
            for (int i = 0; i < count; i++) {
                ByteBuf data = await(reads.get(i));
                try {
                    assertArrayEquals(pattern(i, blockBytes), ByteBufUtil.getBytes(data), "block " + i);
                } finally {
                    data.release();
                }
            }
            assertEquals(0, client.unmatchedReplies());
        }
    }

    @Test
    void closeWaitsForRequestsInFlight() throws Exception {
        NbdClient client = connect(true);
        List<CompletableFuture<ByteBuf>> reads = new ArrayList<>();
        for (int i = 0; i < 64; i++) {
            reads.add(client.read(i * 65536L, 65536, 0));
        }
        client.close();
        assertFalse(client.isOpen());
        for (CompletableFuture<ByteBuf> read : reads) {
            assertTrue(read.isDone() && !read.isCompletedExceptionally());
            read.join().release();
        }
    }

    @Test
    void requestsAfterCloseFailAsClosed() throws Exception {
        NbdClient client = connect(true);
        client.close();
        assertEquals(NbdException.Kind.CLOSED, failure(client.flush()).kind());
        assertEquals(NbdException.Kind.CLOSED, failure(client.write(0, buffer(new byte[512]), 0)).kind());
    }

    @Test
    void losingTheServerFailsEveryRequestInFlight() throws Exception {
        server.close();
        // Reads are delayed 10 s, so they are all still in flight when nbdkit is killed.
        server = Nbdkit.start(dir, List.of("--filter=delay"), "memory", "64M", "rdelay=10");
        NbdClient client = connect(true);
        List<CompletableFuture<ByteBuf>> reads = new ArrayList<>();
        for (int i = 0; i < 16; i++) {
            reads.add(client.read(i * 4096L, 4096, 0));
        }
        Thread.sleep(200);
        server.kill();
        for (CompletableFuture<ByteBuf> read : reads) {
            assertEquals(NbdException.Kind.CONNECTION_LOST, failure(read).kind());
        }
        await(client.closeFuture());
        // Later requests fail with the same reason, whether or not the client's event loop is shut down yet.
        assertEquals(NbdException.Kind.CONNECTION_LOST, failure(client.flush()).kind());
        Thread.sleep(100);
        assertEquals(NbdException.Kind.CONNECTION_LOST, failure(client.flush()).kind());
        client.close();
    }

    @Test
    void rawRequestWithForeignCookieIsAnsweredAndCountedAsUnmatched() throws Exception {
        try (NbdClient client = connect(true)) {
            ByteBuf flush = Unpooled.buffer(Nbd.REQUEST_HEADER_BYTES);
            RequestHeader.write(flush, 0, Nbd.CMD_FLUSH, 0x8000_0000_0000_0001L, 0, 0);
            await(client.sendRaw(flush));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (client.unmatchedReplies() == 0 && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            assertEquals(1, client.unmatchedReplies());
            await(client.flush());
        }
    }

    @Test
    void rawGarbageMakesTheServerDisconnect() throws Exception {
        try (NbdClient client = connect(true)) {
            ByteBuf garbage = Unpooled.buffer(Nbd.REQUEST_HEADER_BYTES).writeZero(Nbd.REQUEST_HEADER_BYTES);
            await(client.sendRaw(garbage));
            await(client.closeFuture());
            assertFalse(client.isOpen());
        }
    }

    /** The flags of the extent covering {@code offset}, given extents starting at {@code start}. */
    static int flagsAt(List<Extent> extents, long start, long offset) {
        long position = start;
        for (Extent extent : extents) {
            if (offset < position + extent.lengthBytes()) {
                return extent.flags();
            }
            position += extent.lengthBytes();
        }
        throw new AssertionError("no extent covers offset " + offset + ": " + extents);
    }
}
