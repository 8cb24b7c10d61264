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
 *
 * <p>fio runs unpaced. With {@code --rate_iops} (or {@code --thinktime}) fio waits for its in-flight writes in
 * {@code io_u_quiesce} before it sleeps, and if the NBD connection dies there that loop never ends: with the nbd
 * engine each pass logs "nbd_poll: nothing to poll for in state DEAD" and retries, about 50 MB of log a second
 * (seen with Debian's fio 3.33; the loop is unchanged in fio 3.42). So the job is made long instead: a region of
 * {@value #REGION_MIB} MiB, of which the kill lands after {@value #KILL_AFTER_MIB} MiB.
 */
@Tag("system")
@Timeout(value = 240, unit = TimeUnit.SECONDS)
class PrimaryCrashVerifyStateTest {
    private static final int ROUNDS = 3;
    private static final long REGION_MIB = 192;
    private static final long REGION = REGION_MIB << 20;
    /** Kill the Primary once this much was replicated in the round: well into the run, far from its end. */
    private static final long KILL_AFTER_MIB = 12;
    private static final long KILL_AFTER_BYTES = KILL_AFTER_MIB << 20;
    private static final Duration FIO_TIMEOUT = Duration.ofSeconds(60);
    /** fio notices a killed server at once; a fio still running after this is stuck (see above). */
    private static final Duration FIO_EXIT_AFTER_KILL = Duration.ofSeconds(15);

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
            Fio job = Fio.randomWrites("crash" + round, 0, REGION, 32, 1000L * round + 7);
            long sentBefore = primary.status().peer().sentBytes();

            long started = System.nanoTime();
            BackgroundProcess fio = Fio.start(fixture, job.writeCommand(primary.nbdUri(), dir, true),
                    "fio-round" + round + ".log");
            int r = round;
            ReplNode p = primary;
            long sentAtKill = cluster.await(primary, "round " + r + ": " + KILL_AFTER_MIB + " MiB replicated by fio",
                    v -> v.peer().sentBytes() - sentBefore >= KILL_AFTER_BYTES, FIO_TIMEOUT).peer().sentBytes()
                    - sentBefore;
            assertTrue(fio.isAlive(), () -> "round " + r + ": fio finished before the Primary was killed; the run "
                    + "is too short to test a crash:\n" + fio.log());
            primary.kill9();
            double killedAfter = (System.nanoTime() - started) / 1e9;

            OptionalInt fioExit = fio.awaitExit(FIO_EXIT_AFTER_KILL);
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

            System.out.printf("round %d: %s killed during fio (%.1f s in, %d of %d MiB replicated); %s promoted; "
                    + "fio verified %d acknowledged 4 KiB writes on it%n", r, p.name(), killedAfter, sentAtKill >> 20,
                    REGION_MIB, secondary.name(), verified.path("read").path("io_bytes").asLong() / 4096);
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
