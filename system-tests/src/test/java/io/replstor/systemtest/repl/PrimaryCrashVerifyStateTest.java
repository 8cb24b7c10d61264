package io.replstor.systemtest.repl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.replstor.systemtest.support.BackgroundProcess;
import io.replstor.systemtest.support.CommandResult;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.OptionalInt;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Protocol C keeps every acknowledged write when the Primary crashes. Three rounds: fio writes random 4 KiB blocks
 * at queue depth 32 through the Primary, saving its verify state (which writes completed); the Primary is killed
 * with SIGKILL in the middle; the Secondary is promoted (plain {@code primary}: it is UpToDate) and fio's
 * verify-only pass, loading the state, checks that every acknowledged write is on it. The killed node is restarted,
 * resyncs, and is the Secondary of the next round. Each round uses another seed, so a block left over from an
 * earlier round cannot pass for a write that was lost. At the end both replicas hold the same data.
 */
@Tag("system")
@Timeout(value = 240, unit = TimeUnit.SECONDS)
class PrimaryCrashVerifyStateTest {
    private static final int ROUNDS = 3;
    private static final long REGION = 128L << 20;
    /** Kill the Primary once this much was replicated in the round: well into the run, far from its end. */
    private static final long KILL_AFTER_BYTES = 12L << 20;
    /** Paces fio (about 32 MiB/s), so that the run outlasts the time it takes to decide to kill. */
    private static final String RATE = "--rate_iops=8000";
    private static final Duration FIO_TIMEOUT = Duration.ofSeconds(60);

    @RegisterExtension
    final ReplFixture fixture = new ReplFixture();

    @Test
    void everyAcknowledgedWriteSurvivesThreePrimaryCrashes() throws Exception {
        ReplCluster cluster = fixture.cluster(ClusterSpec.twoNodes().protocol("C")).initializeUpToDate();
        ReplNode primary = cluster.alpha();
        primary.verb("primary");

        for (int round = 1; round <= ROUNDS; round++) {
            ReplNode secondary = cluster.other(primary);
            Path dir = Files.createDirectory(fixture.dir().resolve("round" + round));
            Fio job = Fio.randomWrites("crash" + round, 0, REGION, 32, 1000L * round + 7).with(RATE);
            long sentBefore = primary.status().peer().sentBytes();

            BackgroundProcess fio = Fio.start(fixture, job.writeCommand(primary.nbdUri(), dir, true),
                    "fio-round" + round + ".log");
            int r = round;
            ReplNode p = primary;
            cluster.await(primary, "round " + r + ": " + (KILL_AFTER_BYTES >> 20) + " MiB replicated by fio",
                    v -> v.peer().sentBytes() - sentBefore >= KILL_AFTER_BYTES, FIO_TIMEOUT);
            assertTrue(fio.isAlive(), () -> "round " + r + ": fio finished before the Primary was killed; the run "
                    + "is too short to test a crash:\n" + fio.log());
            primary.kill9();

            OptionalInt fioExit = fio.awaitExit(FIO_TIMEOUT);
            assertTrue(fioExit.isPresent(), () -> "round " + r + ": fio still runs after its server was killed:\n"
                    + fio.log());
            assertNotEquals(0, fioExit.getAsInt(), () -> "round " + r + ": fio cannot have succeeded against a "
                    + "killed server:\n" + fio.log());
            Path state = stateFile(dir);

            cluster.await(secondary, "round " + r + ": lost its Primary " + p.name(),
                    v -> !v.peer().connected() && "UpToDate".equals(v.disk()));
            // UpToDate, so a plain promotion must do; no --force
            secondary.verb("primary");
            cluster.await(secondary, "round " + r + ": Primary", v -> "Primary".equals(v.role()));

            CommandResult verify = Fio.run(job.verifyCommand(secondary.nbdUri(), dir, true), FIO_TIMEOUT)
                    .assertSuccess();
            JsonNode verified = Fio.job(job.report(dir, "verify"));
            String context = "round " + r + " (state " + state + "):\n" + verified.toPrettyString() + "\n"
                    + verify.describe();
            assertEquals(0, verified.path("error").asInt(), context);
            assertTrue(verified.path("read").path("io_bytes").asLong() >= KILL_AFTER_BYTES / 2,
                    () -> "the verify pass must check the writes completed before the crash:\n" + context);

            System.out.println("round " + r + ": " + p.name() + " killed during fio; " + secondary.name()
                    + " promoted; fio verified " + verified.path("read").path("io_bytes").asLong() / 4096
                    + " acknowledged 4 KiB writes on it");
            // the crashed node comes back and takes the new Primary's data, its unreplicated writes included
            primary.start();
            cluster.awaitInSync();
            primary = secondary;
        }

        cluster.stopAll();
        cluster.assertDataAreasIdentical();
    }

    /** fio's {@code local-NAME-0-verify.state}, saved when its job ended with the I/O errors of the crash. */
    private static Path stateFile(Path dir) throws IOException {
        try (Stream<Path> files = Files.list(dir)) {
            return files.filter(f -> f.getFileName().toString().endsWith("-verify.state")).findFirst()
                    .orElseThrow(() -> new AssertionError("fio saved no verify state in " + dir));
        }
    }
}
