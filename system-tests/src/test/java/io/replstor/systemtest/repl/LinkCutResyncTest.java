package io.replstor.systemtest.repl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.replstor.systemtest.support.BackgroundProcess;
import java.time.Duration;
import java.util.OptionalInt;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The replication link fails while the Primary is being written to: beta runs in its own network namespace and the
 * host end of its veth pair goes down in the middle of a fio run on alpha. alpha stays Primary and fio finishes
 * without an error; alpha's bitmap collects what beta misses. When the link comes back, the resync moves exactly
 * the out-of-sync bytes (nothing is written during it), and the replicas end identical.
 */
@Tag("system")
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class LinkCutResyncTest {
    /** fio paces its writes (about 8 MiB/s) over the whole volume. */
    private static final String[] LOAD = {"--rate_iops=2000", "--time_based", "--runtime=8", "--randseed=33"};
    private static final Duration FIO_TIMEOUT = Duration.ofSeconds(60);

    @RegisterExtension
    final ReplFixture fixture = new ReplFixture();

    @Test
    void primaryGoesOnWhileTheLinkIsDownAndTheResyncMovesOnlyTheDirtyBlocks() throws Exception {
        ReplCluster cluster = fixture.cluster(ClusterSpec.twoNodes().inNamespace("beta")).initializeUpToDate();
        ReplNode alpha = cluster.alpha();
        ReplNode beta = cluster.beta();
        NetNamespace ns = cluster.namespace();
        alpha.verb("primary");

        BackgroundProcess fio = Fio.start(fixture, Fio.load("cut", alpha.nbdUri(), 0, cluster.sizeBytes(), 16, LOAD),
                "fio.log");
        cluster.await(alpha, "1 MiB of fio's writes replicated before the cut", v -> v.peer().sentBytes() >= 1 << 20);
        ns.linkDown();
        ResourceView cut = cluster.await(alpha, "sees the link to beta gone", v -> !v.peer().connected());
        assertEquals("Primary", cut.role(), () -> "alpha must stay Primary without its peer:\n" + cut);
        assertEquals("UpToDate", cut.disk(), () -> "alpha keeps its disk:\n" + cut);
        cluster.await(beta, "sees the link to alpha gone", v -> !v.peer().connected());

        OptionalInt fioExit = fio.awaitExit(FIO_TIMEOUT);
        assertEquals(OptionalInt.of(0), fioExit, () -> "fio on the Primary must go on while the link is down:\n"
                + fio.log());
        ResourceView dirty = alpha.status();
        long outOfSync = dirty.peer().outOfSyncBytes();
        assertTrue(outOfSync > 0, () -> "writes during the cut must be marked out of sync:\n" + dirty);
        assertTrue(!dirty.peer().connected(), () -> "the link is still down:\n" + dirty);
        long sentBefore = dirty.peer().resyncSentBytes();
        long receivedBefore = beta.status().peer().resyncReceivedBytes();

        ns.linkUp();
        cluster.awaitInSync();

        ResourceView a = alpha.status();
        ResourceView b = beta.status();
        assertEquals(outOfSync, a.peer().resyncSentBytes() - sentBefore,
                () -> "the resync must send exactly the " + outOfSync + " out-of-sync bytes:\n" + a);
        assertEquals(outOfSync, b.peer().resyncReceivedBytes() - receivedBefore,
                () -> "beta must receive exactly the " + outOfSync + " out-of-sync bytes:\n" + b);
        assertEquals("Primary", a.role(), a::toString);
        System.out.println("link cut: " + outOfSync + " bytes out of sync while the link was down; the resync sent "
                + (a.peer().resyncSentBytes() - sentBefore) + " and beta received "
                + (b.peer().resyncReceivedBytes() - receivedBefore));

        cluster.stopAll();
        cluster.assertDataAreasIdentical();
    }
}
