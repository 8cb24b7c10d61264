package io.replstor.systemtest;

import io.replstor.systemtest.support.ExportSpec;
import io.replstor.systemtest.support.ExternalCommand;
import io.replstor.systemtest.support.NbdServer;
import io.replstor.systemtest.support.ServerSpec;
import io.replstor.systemtest.support.SystemTestFixture;
import io.replstor.systemtest.support.TestData;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * nbdcopy writes 256 MiB over 4 connections with 64 requests in flight each (it only spreads over connections when
 * the server advertises CAN_MULTI_CONN), then reads it back over a fresh connection; the bytes must be identical.
 */
@Tag("system")
@Timeout(value = 300, unit = TimeUnit.SECONDS)
class NbdcopyRoundTripTest {
    private static final long IMAGE_BYTES = 256L << 20;
    private static final Duration COPY_TIMEOUT = Duration.ofSeconds(120);

    @RegisterExtension
    final SystemTestFixture fixture = new SystemTestFixture();

    @Test
    void multiConnectionCopyReadsBackByteForByte() throws IOException {
        Path source = TestData.sparseFile(fixture.dir().resolve("src.bin"), IMAGE_BYTES);
        TestData.writeRandom(source, 0, IMAGE_BYTES, TestData.seededRandom("src.bin"));
        NbdServer server = fixture.startServer(
                ServerSpec.of(ExportSpec.sparse("disk", fixture.dir().resolve("disk.img"), IMAGE_BYTES)));

        ExternalCommand.of("nbdcopy", "--connections=4", "--requests=64", source.toString(), server.uri("disk"))
                .timeout(COPY_TIMEOUT).runSuccessfully();
        Path readBack = fixture.dir().resolve("read-back.bin");
        ExternalCommand.of("nbdcopy", server.uri("disk"), "-").stdoutTo(readBack).timeout(COPY_TIMEOUT)
                .runSuccessfully();

        ExternalCommand.of("cmp", source.toString(), readBack.toString()).timeout(COPY_TIMEOUT).runSuccessfully();
    }
}
