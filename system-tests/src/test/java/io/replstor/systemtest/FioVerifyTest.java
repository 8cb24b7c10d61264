package io.replstor.systemtest;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.replstor.systemtest.support.CommandResult;
import io.replstor.systemtest.support.ExportSpec;
import io.replstor.systemtest.support.ExternalCommand;
import io.replstor.systemtest.support.NbdServer;
import io.replstor.systemtest.support.ServerSpec;
import io.replstor.systemtest.support.SystemTestFixture;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * fio's nbd engine (libnbd, one connection, 32 requests in flight) writes every 4k block of 256 MiB in random order
 * with a crc32c header, then reads all of it back and verifies each block.
 */
@Tag("system")
@Timeout(value = 300, unit = TimeUnit.SECONDS)
class FioVerifyTest {
    private static final long EXPORT_BYTES = 256L << 20;

    @RegisterExtension
    final SystemTestFixture fixture = new SystemTestFixture();

    @Test
    void randomWritesAtQueueDepth32VerifyWithCrc32c() throws IOException {
        NbdServer server = fixture.startServer(
                ServerSpec.of(ExportSpec.sparse("disk", fixture.dir().resolve("disk.img"), EXPORT_BYTES)));
        Path report = fixture.dir().resolve("fio.json");

        CommandResult fio = ExternalCommand.of("fio", "--name=v", "--ioengine=nbd", "--uri=" + server.uri("disk"),
                        "--rw=randwrite", "--bs=4k", "--iodepth=32", "--size=256M",
                        "--verify=crc32c", "--verify_fatal=1", "--do_verify=1",
                        // otherwise fio leaves local-v-0-verify.state in the working directory
                        "--verify_state_save=0",
                        "--output-format=json", "--output=" + report)
                .timeout(Duration.ofSeconds(240)).runSuccessfully();

        JsonNode job = new ObjectMapper().readTree(report.toFile()).get("jobs").get(0);
        String context = job.toPrettyString() + "\n" + fio.describe();
        assertEquals(0, job.get("error").asInt(), context);
        assertEquals(EXPORT_BYTES, job.get("write").get("io_bytes").asLong(), context);
        assertEquals(EXPORT_BYTES, job.get("read").get("io_bytes").asLong(),
                () -> "the verify pass must read back every written block:\n" + context);
    }
}
