package io.replstor.systemtest.repl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.replstor.systemtest.support.BackgroundProcess;
import io.replstor.systemtest.support.CommandResult;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.OptionalInt;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Three data nodes and a witness, alpha Primary under fio (random 4 KiB writes with crc32c verify headers, queue
 * depth 16). gamma is killed with SIGKILL in the middle: alpha commits gamma's removal from the in-sync set and the
 * writes go on to beta. gamma restarts, resyncs only what its bitmap says it missed (fewer bytes than the volume),
 * and is back in the in-sync set. Then gamma is made Primary and fio's verify pass reads every block back from it;
 * the three data areas are identical.
 */
@Tag("system")
@Timeout(value = 240, unit = TimeUnit.SECONDS)
class ThreeNodeKillTest {
    private static final long SIZE = 128L << 20;
    private static final long REGION = 64L << 20;
    private static final long KILL_AFTER_BYTES = 8L << 20;
    /** Replicated to beta after gamma's removal, with fio still running: the writes went on. */
    private static final long AFTER_REMOVAL_BYTES = 2L << 20;
    private static final Duration FIO_TIMEOUT = Duration.ofSeconds(150);

    @RegisterExtension
    final ReplFixture fixture = new ReplFixture();

    @Test
    void aKilledSecondaryLeavesTheInSyncSetAndComesBackWithABitmapResync() throws Exception {
        ReplCluster cluster = fixture.cluster(ClusterSpec.withWitness(3).sizeBytes(SIZE)).initializeUpToDate();
        ReplNode alpha = cluster.alpha();
        ReplNode gamma = cluster.gamma();
        alpha.verb("primary");
        Path dir = fixture.dir();
        Fio job = Fio.randomWrites("kill3", 0, REGION, 16, 3303);

        BackgroundProcess fio = Fio.start(fixture, job.writeCommand(alpha.nbdUri(), dir, false), "fio-write.log");
        cluster.await(alpha, (KILL_AFTER_BYTES >> 20) + " MiB replicated to gamma",
                v -> v.peer("gamma").sentBytes() >= KILL_AFTER_BYTES, FIO_TIMEOUT);
        assertTrue(fio.isAlive(), () -> "fio ended before gamma was killed:\n" + fio.log());
        long killedAt = System.nanoTime();
        gamma.kill9();

        ClusterView removed = cluster.awaitCluster("gamma removed from the in-sync set (committed)",
                v -> v.inSync().equals(List.of("alpha", "beta")) && v.primaries().equals(List.of("alpha")));
        double removedAfter = (System.nanoTime() - killedAt) / 1e9;
        long sentToBeta = alpha.status().peer("beta").sentBytes();
        ResourceView goingOn = cluster.await(alpha, "writes go on to beta after gamma's removal",
                v -> v.peer("beta").sentBytes() >= sentToBeta + AFTER_REMOVAL_BYTES, FIO_TIMEOUT);
        assertTrue(fio.isAlive(), () -> "fio must still be running after gamma's removal (a longer region?):\n"
                + fio.log());
        long missed = goingOn.peer("gamma").outOfSyncBytes();
        System.out.printf("gamma killed; its removal from the in-sync set committed %.2f s later (%s); alpha has "
                + "%d bytes out of sync for gamma so far, fio goes on%n", removedAfter, removed.lastChange(), missed);

        long markedAtRestart = alpha.status().peer("gamma").outOfSyncBytes();
        gamma.start();
        OptionalInt fioExit = fio.awaitExit(FIO_TIMEOUT);
        assertEquals(OptionalInt.of(0), fioExit, fio::log);
        JsonNode written = Fio.job(job.report(dir, "write"));
        assertEquals(0, written.path("error").asInt(), written::toPrettyString);
        assertEquals(REGION, written.path("write").path("io_bytes").asLong(), written::toPrettyString);

        cluster.awaitInSync();
        cluster.awaitCluster("gamma back in the in-sync set",
                v -> v.inSync().equals(List.of("alpha", "beta", "gamma")));
        ResourceView g = gamma.status();
        long resynced = g.peers().stream().mapToLong(ResourceView.Peer::resyncReceivedBytes).sum();
        assertTrue(resynced > 0, () -> "gamma missed writes; it must have resynced them:\n" + g);
        // what alpha marked for gamma plus gamma's own activity log (it crashed): within fio's region, never the
        // whole volume
        assertTrue(resynced <= REGION && resynced < SIZE, () -> "gamma must resync only what it missed (the "
                + "bitmaps, within the " + REGION + " bytes fio wrote), not the whole " + SIZE + " byte volume:\n"
                + g);
        System.out.printf("gamma restarted: bitmap resync of %d bytes (%.1f%% of the %d MiB volume; alpha had "
                + "marked %d bytes for gamma when it restarted, fio's region is %d MiB), back in the in-sync set%n",
                resynced, 100.0 * resynced / SIZE, SIZE >> 20, markedAtRestart, REGION >> 20);

        // every block fio wrote, read back from gamma
        alpha.verb("secondary");
        gamma.verb("primary");
        CommandResult verify = Fio.run(job.verifyCommand(gamma.nbdUri(), dir, false), FIO_TIMEOUT).assertSuccess();
        JsonNode verified = Fio.job(job.report(dir, "verify"));
        assertEquals(0, verified.path("error").asInt(), () -> verified.toPrettyString() + "\n" + verify.describe());
        assertEquals(REGION, verified.path("read").path("io_bytes").asLong(), verified::toPrettyString);
        System.out.println("fio verify on gamma: all " + (REGION >> 12) + " blocks written through alpha verified");

        cluster.stopAll();
        cluster.assertDataAreasIdentical();
    }
}
