package io.replstor.nbd.client;

import static io.replstor.nbd.client.ClientTestSupport.await;
import static io.replstor.nbd.client.ClientTestSupport.pattern;
import static io.replstor.nbd.client.ClientTestSupport.readBytes;
import static io.replstor.nbd.client.NbdClientMemoryTest.flagsAt;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.replstor.nbd.Nbd;
import java.io.RandomAccessFile;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * BLOCK_STATUS against {@code nbdkit file} on a sparse 16 MiB file with 64 KiB of data at 4 MiB and at
 * 12 MiB. nbdkit finds holes with SEEK_HOLE/SEEK_DATA, so extents follow the file system's allocation.
 */
@ExtendWith(LeakCheck.class)
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class NbdClientFileTest {
    private static final long SIZE = 16L << 20;
    private static final long DATA_A = 4L << 20;
    private static final long DATA_B = 12L << 20;
    private static final int DATA_BYTES = 64 * 1024;

    @TempDir
    Path dir;
    private Nbdkit server;
    private NbdClient client;

    @BeforeEach
    void start() throws Exception {
        Path file = dir.resolve("sparse.img");
        try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw")) {
            raf.setLength(SIZE);
            raf.seek(DATA_A);
            raf.write(pattern(1, DATA_BYTES));
            raf.seek(DATA_B);
            raf.write(pattern(2, DATA_BYTES));
        }
        server = Nbdkit.start(dir, List.of(), "file", file.toString());
        client = NbdClient.connect(NbdClientOptions.builder().host(Nbdkit.HOST).port(server.port())
                .metaContexts(List.of(Nbd.BASE_ALLOCATION)).timeout(Duration.ofSeconds(10)).build());
    }

    @AfterEach
    void stop() throws Exception {
        if (client != null) {
            client.close();
        }
        server.close();
    }

    @Test
    void blockStatusReportsHolesAroundTheWrittenRanges() throws Exception {
        List<Extent> extents = await(client.blockStatus(0, SIZE, 0));
        long covered = extents.stream().mapToLong(Extent::lengthBytes).sum();
        assertTrue(covered > 0 && covered <= SIZE, "covered " + covered + ": " + extents);
        int hole = Nbd.STATE_HOLE | Nbd.STATE_ZERO;
        assertEquals(hole, flagsAt(extents, 0, 0), extents.toString());
        assertEquals(hole, flagsAt(extents, 0, DATA_A - 4096), extents.toString());
        assertEquals(0, flagsAt(extents, 0, DATA_A) & Nbd.STATE_HOLE, extents.toString());
        assertEquals(0, flagsAt(extents, 0, DATA_A + DATA_BYTES - 1) & Nbd.STATE_HOLE, extents.toString());
        assertEquals(hole, flagsAt(extents, 0, DATA_A + DATA_BYTES + 4096), extents.toString());
        if (covered > DATA_B) {
            assertEquals(0, flagsAt(extents, 0, DATA_B) & Nbd.STATE_HOLE, extents.toString());
        }
    }

    @Test
    void blockStatusFromInsideDataStartsWithData() throws Exception {
        List<Extent> extents = await(client.blockStatus(DATA_B + 4096, 1 << 20, 0));
        assertEquals(0, extents.get(0).flags() & Nbd.STATE_HOLE, extents.toString());
        assertEquals(DATA_BYTES - 4096, extents.get(0).lengthBytes(), extents.toString());
    }

    @Test
    void blockStatusWithReqOneReturnsOneExtentWithinTheRequest() throws Exception {
        List<Extent> extents = await(client.blockStatus(0, 1 << 20, Nbd.CMD_FLAG_REQ_ONE));
        assertEquals(1, extents.size(), extents.toString());
        assertTrue(extents.get(0).lengthBytes() <= 1 << 20);
        assertTrue(extents.get(0).hole() && extents.get(0).zero());
    }

    @Test
    void readsOfHolesAndDataReturnTheFileContents() throws Exception {
        assertArrayEquals(new byte[DATA_BYTES], readBytes(client, 0, DATA_BYTES));
        byte[] straddle = readBytes(client, DATA_A - 4096, 8192);
        assertArrayEquals(new byte[4096], java.util.Arrays.copyOfRange(straddle, 0, 4096));
        assertArrayEquals(java.util.Arrays.copyOfRange(pattern(1, DATA_BYTES), 0, 4096),
                java.util.Arrays.copyOfRange(straddle, 4096, 8192));
    }
}
