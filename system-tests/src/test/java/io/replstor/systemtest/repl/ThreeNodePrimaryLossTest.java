package io.replstor.systemtest.repl;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.replstor.systemtest.support.BackgroundProcess;
import io.replstor.systemtest.support.CommandResult;
import io.replstor.systemtest.support.TestData;
import java.time.Duration;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The Primary of three data nodes dies with writes in flight to both Secondaries. Three data nodes and a witness;
 * gamma receives every frame {@value #GAMMA_DELAY_MS} ms late ({@code REPLSTOR_FAULTS=recv-delay-ms}: frames still in
 * that queue when the connection drops are never applied), so when the Primary (alpha or beta) is killed with SIGKILL
 * under fio (random 4 KiB writes, queue depth 32) after a seeded random amount of data, the writes of its last
 * {@value #GAMMA_DELAY_MS} ms have reached the other Secondary and not gamma. None of them was acknowledged. A
 * seeded choice of survivor is promoted; the two survivors must end with identical data areas, compared byte for
 * byte while the killed node is still down, and again after it restarted and resynced. Without reconciliation the
 * survivors keep whichever of those writes each received, and differ silently while both report UpToDate.
 */
@Tag("system")
@Timeout(value = 420, unit = TimeUnit.SECONDS)
class ThreeNodePrimaryLossTest {
    private static final int ROUNDS = 4;
    static final long GAMMA_DELAY_MS = 100;
    private static final long SIZE = 64L << 20;
    private static final long REGION = 32L << 20;
    private static final Duration PROMOTE_WITHIN = Duration.ofSeconds(30);
    private static final Duration SETTLE = Duration.ofSeconds(60);

    @RegisterExtension
    final ReplFixture fixture = new ReplFixture();

    @Test
    void theSurvivorsOfAPrimaryLostMidWriteHoldTheSameData() throws Exception {
        SplittableRandom random = TestData.seededRandom("ThreeNodePrimaryLossTest, kill points and successors");
        ReplCluster cluster = fixture.cluster(ClusterSpec.withWitness(3).sizeBytes(SIZE)
                .env("gamma", "REPLSTOR_FAULTS", "recv-delay-ms=" + GAMMA_DELAY_MS)).initializeUpToDate();
        ReplNode primary = cluster.alpha();
        primary.verb("primary");
        for (int round = 1; round <= ROUNDS; round++) {
            int r = round;
            ReplNode dying = primary;
            List<ReplNode> survivors = cluster.nodes().stream().filter(n -> n != dying).toList();
            ReplNode successor = survivors.get(random.nextInt(survivors.size()));
            ReplNode other = survivors.get(0) == successor ? survivors.get(1) : survivors.get(0);
            long killAfter = (1L << 20) + random.nextLong(2L << 20);

            BackgroundProcess fio = Fio.start(fixture, Fio.load("loss" + r, dying.nbdUri(), 0, REGION, 32,
                    "--time_based", "--runtime=120", "--randrepeat=0"), "fio-round" + r + ".log");
            long sentBefore = dying.status().peer("gamma").sentBytes();
            cluster.await(dying, "round " + r + ": " + (killAfter >> 10) + " KiB more replicated",
                    v -> v.peer("gamma").sentBytes() >= sentBefore + killAfter, SETTLE);
            assertTrue(fio.isAlive(), () -> "round " + r + ": fio ended before the kill:\n" + fio.log());
            dying.kill9();
            fio.awaitExit(Duration.ofSeconds(20));
            // the survivor that is not gamma holds the last writes gamma never got: it says so until reconciled
            ReplNode ahead = survivors.stream().filter(n -> n != cluster.gamma()).findFirst().orElseThrow();
            cluster.await(ahead, "round " + r + ": " + ahead.name() + " reports unconfirmed writes of " + dying.name(),
                    ResourceView::unconfirmedWrites, SETTLE);

            CommandResult promoted = promote(successor, r);
            ResourceView s = cluster.await(successor, "round " + r + ": " + successor.name() + " Primary, "
                    + other.name() + " in sync with it", v -> "Primary".equals(v.role()) && "UpToDate".equals(v.disk())
                    && inSyncWith(v, other.name()), SETTLE);
            cluster.await(other, "round " + r + ": " + other.name() + " in sync with " + successor.name(),
                    v -> "UpToDate".equals(v.disk()) && inSyncWith(v, successor.name()), SETTLE);
            ResourceView o = other.status();
            long reconciled = o.peer(successor.name()).resyncReceivedBytes();
            assertFalse(o.unconfirmedWrites() || s.unconfirmedWrites(), () -> "round " + r + ": reconciled, yet:\n"
                    + o + "\n" + s);
            ReplCluster.assertDataAreasIdentical(successor.disk(), other.disk(), SIZE);
            System.out.printf("round %d: %s killed after %d KiB more to gamma; %s promoted (%s); %s and %s identical "
                            + "(%s has received %d resync bytes from %s so far)%n", r, dying.name(), killAfter >> 10,
                    successor.name(), firstLine(promoted.stdout()), successor.name(), other.name(),
                    other.name(), reconciled, successor.name());

            dying.start();
            cluster.awaitInSync();
            for (ReplNode n : survivors) {
                ReplCluster.assertDataAreasIdentical(successor.disk(), n.disk(), SIZE);
            }
            ReplCluster.assertDataAreasIdentical(successor.disk(), dying.disk(), SIZE);
            System.out.printf("round %d: %s restarted and resynced; all three data areas identical%n", r,
                    dying.name());
            primary = successor;
            if (primary == cluster.gamma()) {
                // gamma is the lagging one, never the Primary that dies: the restarted node takes over
                cluster.gamma().verb("secondary");
                dying.verb("primary");
                primary = dying;
            }
        }
        cluster.stopAll();
        cluster.assertDataAreasIdentical();
    }

    private static boolean inSyncWith(ResourceView v, String peer) {
        return v.peer(peer).inSync();
    }

    /** replctl primary until the store lets it (the dead Primary's lease must run out first). */
    private static CommandResult promote(ReplNode node, int round) {
        long deadline = System.nanoTime() + PROMOTE_WITHIN.toNanos();
        while (true) {
            CommandResult result = node.replctl("primary");
            if (result.exitCode() == 0) {
                return result;
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("round " + round + ": " + node.name() + " could not be promoted within "
                        + PROMOTE_WITHIN.toSeconds() + " s:\n" + result.describe());
            }
            ReplNode.sleep(500);
        }
    }

    private static String firstLine(String s) {
        String t = s.strip();
        int nl = t.indexOf('\n');
        return nl < 0 ? t : t.substring(0, nl);
    }
}
