package io.replstor.systemtest.repl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.replstor.systemtest.support.CommandResult;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * When the Primary acknowledges a write, by protocol, with a slow peer: beta receives every replicated frame
 * {@value #RECV_DELAY_MS} ms late (a slow link: {@code REPLSTOR_FAULTS=recv-delay-ms}) and then waits
 * {@value #APPLY_DELAY_MS} ms more before writing it ({@code apply-delay-ms}, a slow disk). fio writes
 * {@value #WRITES} single 4 KiB blocks one at a time through alpha. Protocol C acknowledges after the peer wrote the
 * block (at least both delays), B once the peer received it (at least the link delay, but not the disk's), A once
 * it is sent (neither). (The blocks are written once before the measured run, so that no write pays for taking its
 * extent into the activity log.)
 */
@Tag("system")
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ProtocolAckLatencyTest {
    private static final long APPLY_DELAY_MS = 300;
    private static final long RECV_DELAY_MS = 150;
    private static final int WRITES = 6;
    /** A must stay under the link's delay. */
    private static final long FAST_LIMIT_MS = 100;
    private static final Duration FIO_TIMEOUT = Duration.ofSeconds(60);

    @RegisterExtension
    final ReplFixture fixture = new ReplFixture();

    @ParameterizedTest(name = "protocol {0}")
    @ValueSource(strings = {"A", "B", "C"})
    void writeLatencyFollowsTheProtocolsAcknowledgement(String protocol) throws Exception {
        ReplCluster cluster = fixture.cluster(ClusterSpec.twoNodes().protocol(protocol)
                .env("beta", "REPLSTOR_FAULTS", "apply-delay-ms=" + APPLY_DELAY_MS + ",recv-delay-ms=" + RECV_DELAY_MS))
                .initializeUpToDate();
        ReplNode alpha = cluster.alpha();
        alpha.verb("primary");
        assertTrue(cluster.beta().runs().get(0).log().contains(
                "fault injection: apply-delay-ms=" + APPLY_DELAY_MS + ", recv-delay-us=" + RECV_DELAY_MS * 1000),
                () -> "beta must run with the injected delay:\n" + cluster.beta().log());

        Path dir = fixture.dir();
        // the first run takes the extent into the activity log (a metadata write and sync of its own); the second
        // writes the same blocks again and is measured
        Path warmUp = dir.resolve("warm-up.json");
        Fio.run(latencyJob(alpha, warmUp), FIO_TIMEOUT).assertSuccess();
        Path report = dir.resolve("latency.json");
        CommandResult fio = Fio.run(latencyJob(alpha, report), FIO_TIMEOUT).assertSuccess();
        JsonNode job = Fio.job(report);
        JsonNode write = job.path("write");
        String context = protocol + ": " + write.path("lat_ns").toPrettyString() + "\n" + fio.describe();
        assertEquals(0, job.path("error").asInt(), context);
        assertEquals(WRITES, write.path("total_ios").asInt(), context);
        double minMs = write.path("lat_ns").path("min").asDouble() / 1e6;
        double maxMs = write.path("lat_ns").path("max").asDouble() / 1e6;
        System.out.printf("protocol %s with a peer receiving %d ms late and writing %d ms later: %d writes, "
                + "latency min %.1f ms, max %.1f ms%n", protocol, RECV_DELAY_MS, APPLY_DELAY_MS, WRITES, minMs, maxMs);
        switch (protocol) {
            case "C" -> assertTrue(minMs >= RECV_DELAY_MS + APPLY_DELAY_MS, () -> "protocol C must wait until the "
                    + "peer wrote the block (" + (RECV_DELAY_MS + APPLY_DELAY_MS) + " ms):\n" + context);
            case "B" -> assertTrue(minMs >= RECV_DELAY_MS && maxMs < RECV_DELAY_MS + APPLY_DELAY_MS, () -> "protocol B "
                    + "must wait until the peer received the block (" + RECV_DELAY_MS + " ms) but not for its write ("
                    + (RECV_DELAY_MS + APPLY_DELAY_MS) + " ms):\n" + context);
            default -> assertTrue(maxMs < FAST_LIMIT_MS, () -> "protocol A must not wait for the peer (every write "
                    + "under " + FAST_LIMIT_MS + " ms):\n" + context);
        }
        cluster.await(alpha, "the peer caught up", v -> v.peer().inSync());
        cluster.stopAll();
        cluster.assertDataAreasIdentical();
    }

    /** {@value #WRITES} sequential 4 KiB writes at the start of the volume, one at a time. */
    private static java.util.List<String> latencyJob(ReplNode primary, Path report) {
        return java.util.List.of("--output-format=json", "--output=" + report, "--name=lat", "--ioengine=nbd",
                "--uri=" + primary.nbdUri(), "--rw=write", "--bs=4k", "--iodepth=1", "--size=" + WRITES * 4 + "k");
    }
}
