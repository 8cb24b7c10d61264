package io.replstor.systemtest;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import io.replstor.systemtest.support.CommandResult;
import io.replstor.systemtest.support.ExportSpec;
import io.replstor.systemtest.support.ExternalCommand;
import io.replstor.systemtest.support.NbdServer;
import io.replstor.systemtest.support.ServerSpec;
import io.replstor.systemtest.support.SystemTestFixture;
import io.replstor.systemtest.support.TestData;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * qemu-io (qemu 7.2's NBD client: structured replies, WRITE with FUA, WRITE_ZEROES with and without NO_HOLE, TRIM,
 * FLUSH) writes patterns and reads them back with {@code read -P}, which compares every byte.
 */
@Tag("system")
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class QemuIoPatternTest {
    private static final long EXPORT_BYTES = 64L << 20;
    private static final String EXPORT = "disk";
    private static final Duration QEMU_IO_TIMEOUT = Duration.ofSeconds(60);

    @RegisterExtension
    final SystemTestFixture fixture = new SystemTestFixture();

    private Path backingFile;
    private NbdServer server;

    @BeforeEach
    void startServer() {
        backingFile = fixture.dir().resolve("disk.img");
        server = fixture.startServer(ServerSpec.of(ExportSpec.sparse(EXPORT, backingFile, EXPORT_BYTES)));
    }

    @Test
    void patternWrittenIsReadBackOnTheSameAndOnANewConnection() {
        qemuIo("write -P 0xa5 0 4M", "read -P 0xa5 0 4M", "flush");
        qemuIo("read -P 0xa5 0 4M", "read -P 0 4M 1M");
    }

    @Test
    void fuaWriteIsReadBackAndIsInTheBackingFile() throws IOException {
        qemuIo("write -f -P 0x5a 1M 1M", "read -P 0x5a 1M 1M");
        assertBackingFileHolds(1 << 20, 1 << 20, 0x5a);
    }

    @Test
    void zeroWritesWithAndWithoutUnmapReadBackAsZeroes() {
        qemuIo("write -P 0xa5 0 4M",
                "write -z 512k 1M",
                "write -z -u 2M 1M",
                "read -P 0xa5 0 512k",
                "read -P 0 512k 1M",
                "read -P 0xa5 1536k 512k",
                "read -P 0 2M 1M",
                "read -P 0xa5 3M 1M");
    }

    @Test
    void discardLeavesNeighboursIntactAndTheRangeWritableAgain() {
        // TRIM is a hint, so the discarded range's contents are undefined and not checked
        qemuIo("write -P 0x77 0 3M",
                "discard 1M 1M",
                "read -P 0x77 0 1M",
                "read -P 0x77 2M 1M",
                "write -P 0x78 1M 1M",
                "read -P 0x78 1M 1M");
    }

    @Test
    void twoConcurrentAioWritesAreReadBackAfterAioFlush() throws IOException {
        qemuIo("aio_write -P 0x11 0 64k",
                "aio_write -P 0x22 8M 64k",
                "aio_flush",
                "read -P 0x11 0 64k",
                "read -P 0x22 8M 64k");
        assertBackingFileHolds(0, 64 << 10, 0x11);
        assertBackingFileHolds(8 << 20, 64 << 10, 0x22);
    }

    @Test
    void singleSectorWritesAtOddSectorOffsetsKeepTheirNeighbours() throws IOException {
        qemuIo("write -P 0xa5 0 64k",
                "write -P 0x01 512 512",
                "write -P 0x03 1536 512",
                "write -P 0x09 4608 512",
                "read -P 0xa5 0 512",
                "read -P 0x01 512 512",
                "read -P 0xa5 1024 512",
                "read -P 0x03 1536 512",
                "read -P 0xa5 2048 2560",
                "read -P 0x09 4608 512",
                "read -P 0xa5 5120 60416",
                "flush");
        assertBackingFileHolds(512, 512, 0x01);
        assertBackingFileHolds(1024, 512, 0xa5);
        assertBackingFileHolds(1536, 512, 0x03);
        assertBackingFileHolds(4608, 512, 0x09);
    }

    @Test
    void lastSectorOfTheExportIsWritableAndReadable() throws IOException {
        long lastSector = EXPORT_BYTES - 512;
        qemuIo("write -P 0x5c " + lastSector + " 512",
                "read -P 0x5c " + lastSector + " 512",
                "read -P 0 " + (lastSector - 4096) + " 4096",
                "flush");
        assertBackingFileHolds(lastSector, 512, 0x5c);
    }

    /** Runs qemu-io with one {@code -c} per command; fails unless it exits 0 with every pattern verified. */
    private CommandResult qemuIo(String... commands) {
        List<String> args = new ArrayList<>(List.of("-f", "raw", server.uri(EXPORT)));
        for (String command : commands) {
            args.add("-c");
            args.add(command);
        }
        CommandResult result = ExternalCommand.of("qemu-io", args).timeout(QEMU_IO_TIMEOUT).runSuccessfully();
        assertFalse((result.stdout() + result.stderr()).contains("Pattern verification failed"), result::describe);
        assertFalse((result.stdout() + result.stderr()).contains("failed:"), result::describe);
        return result;
    }

    /** What FLUSH or FUA acknowledged must already be in the export's file. */
    private void assertBackingFileHolds(long offset, int length, int pattern) throws IOException {
        byte[] expected = new byte[length];
        Arrays.fill(expected, (byte) pattern);
        assertArrayEquals(expected, TestData.read(backingFile, offset, length),
                () -> String.format("backing file %s at offset %d, %d bytes, should all be 0x%02x",
                        backingFile, offset, length, pattern));
    }
}
