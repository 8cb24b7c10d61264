package io.replstor.systemtest.repl;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import io.replstor.systemtest.support.CommandResult;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Protocol C replication end to end: fio writes every 4 KiB block of a 64 MiB region in random order at queue depth
 * 32 (crc32c verify headers) through alpha, the Primary; then the roles switch and fio's verify-only pass reads
 * every block back from beta, the new Primary. The replicas' data areas are identical afterwards.
 */
@Tag("system")
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class ProtocolCFioVerifyTest {
    private static final long REGION = 64L << 20;
    private static final Duration FIO_TIMEOUT = Duration.ofSeconds(90);

    @RegisterExtension
    final ReplFixture fixture = new ReplFixture();

    @Test
    void everyBlockWrittenOnThePrimaryVerifiesOnThePeerAfterSwitchingRoles() throws IOException {
        ReplCluster cluster = fixture.cluster(ClusterSpec.twoNodes().protocol("C")).initializeUpToDate();
        ReplNode alpha = cluster.alpha();
        ReplNode beta = cluster.beta();
        alpha.verb("primary");
        Path dir = fixture.dir();
        Fio job = Fio.randomWrites("pc", 0, REGION, 32, 4242);

        CommandResult write = Fio.run(job.writeCommand(alpha.nbdUri(), dir, false), FIO_TIMEOUT).assertSuccess();
        JsonNode written = Fio.job(job.report(dir, "write"));
        assertEquals(0, written.path("error").asInt(), () -> written.toPrettyString() + "\n" + write.describe());
        assertEquals(REGION, written.path("write").path("io_bytes").asLong(), written::toPrettyString);

        // protocol C: fio's writes completed only once beta had them, so nothing is pending and nothing went
        // to a resync (a connection that dropped during the run would show here)
        ResourceView a = cluster.await(alpha, "in sync with beta after the writes", v -> v.peer().inSync());
        assertEquals(REGION, a.peer().sentBytes(),
                () -> "every written byte is replicated to beta as a write:\n" + a);
        assertEquals(0, a.peer().resyncSentBytes(),
                () -> "a connected Primary replicates writes; nothing should have needed a resync:\n" + a);

        alpha.verb("secondary");
        beta.verb("primary");
        cluster.await(beta, "Primary", v -> "Primary".equals(v.role()) && "UpToDate".equals(v.disk()));

        CommandResult verify = Fio.run(job.verifyCommand(beta.nbdUri(), dir, false), FIO_TIMEOUT).assertSuccess();
        JsonNode verified = Fio.job(job.report(dir, "verify"));
        assertEquals(0, verified.path("error").asInt(), () -> verified.toPrettyString() + "\n" + verify.describe());
        assertEquals(REGION, verified.path("read").path("io_bytes").asLong(),
                () -> "the verify pass must read back every written block:\n" + verified.toPrettyString());

        System.out.println("protocol C: " + REGION + " bytes written on alpha, replicated as writes ("
                + a.peer().sentBytes() + " sent, 0 resynced), every block verified on beta");
        cluster.stopAll();
        cluster.assertDataAreasIdentical();
    }
}
