package io.replstor.systemtest.repl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.replstor.systemtest.support.BackgroundProcess;
import io.replstor.systemtest.support.ExternalCommand;
import io.replstor.systemtest.support.Tools;
import java.time.Duration;
import java.util.List;
import java.util.OptionalInt;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Two data nodes and a witness, alpha Primary. Without the witness (SIGKILL) the pair still holds a majority of the
 * store, so writes through alpha complete. When beta is frozen too (SIGSTOP: its sockets stay open, it answers
 * nothing), alpha is alone: it can neither get beta's confirmation nor commit beta's removal from the in-sync set,
 * and its lease lapses. With {@code on-no-quorum = "suspend-io"} a write waits (status: quorum false, suspended)
 * and completes once beta runs again; with {@code "io-error"} it fails instead, and once the witness is back alpha
 * writes again. Either way the replicas end identical.
 */
@Tag("system")
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class WitnessDownTest {
    private static final long SIZE = 64L << 20;
    private static final Duration WRITE_TIMEOUT = Duration.ofSeconds(30);
    /** How long a suspended write must stay incomplete: more than a lease and the store's request budget. */
    private static final Duration SUSPENDED_FOR = Duration.ofSeconds(5);
    /** A failing write must fail within about two leases (the store's request budget) plus margin. */
    private static final Duration FAILS_WITHIN = Duration.ofSeconds(20);

    @RegisterExtension
    final ReplFixture fixture = new ReplFixture();

    @Test
    void withoutTheWitnessThePairWritesAndWithoutBetaTooAWriteWaitsUntilBetaIsBack() throws Exception {
        ReplCluster cluster = fixture.cluster(ClusterSpec.withWitness(2).sizeBytes(SIZE)).initializeUpToDate();
        ReplNode alpha = cluster.alpha();
        ReplNode beta = cluster.beta();
        alpha.verb("primary");
        losesTheWitnessAndGoesOn(cluster);

        beta.sigstop();
        BackgroundProcess write = startWrite(alpha, "write -P 0x22 8M 1M", "write-suspended.log");
        ResourceView suspended = cluster.await(alpha, "alone: no quorum, I/O suspended",
                v -> !v.quorum() && v.suspended() != null, Duration.ofSeconds(30));
        long suspendedAt = System.nanoTime();
        OptionalInt early = write.awaitExit(SUSPENDED_FOR);
        assertTrue(early.isEmpty(), () -> "with suspend-io and no quorum the write must wait, but it ended (exit "
                + early + "):\n" + write.log() + "\n" + suspended);
        ResourceView still = alpha.status();
        assertFalse(still.quorum(), still::toString);
        assertEquals("Primary", still.role(), still::toString);
        assertTrue(still.suspended() != null && still.suspended().contains("suspended"), still::toString);
        System.out.printf("suspend-io: alpha alone, the write still waits %.1f s after the suspension; status: "
                + "quorum false, suspended: %s%n", (System.nanoTime() - suspendedAt) / 1e9, still.suspended());

        beta.sigcont();
        long resumedAt = System.nanoTime();
        OptionalInt done = write.awaitExit(WRITE_TIMEOUT);
        assertEquals(OptionalInt.of(0), done, () -> "the suspended write must complete once beta is back:\n"
                + write.log());
        assertTrue(write.log().contains("wrote 1048576/1048576 bytes at offset 8388608"), write::log);
        System.out.printf("suspend-io: the write completed %.1f s after beta was continued%n",
                (System.nanoTime() - resumedAt) / 1e9);

        cluster.awaitInSync();
        ReplCluster.assertPattern(beta.disk(), 8L << 20, 1 << 20, (byte) 0x22);
        cluster.stopAll();
        cluster.assertDataAreasIdentical();
    }

    @Test
    void withIoErrorAWriteWithoutQuorumFailsAndAfterTheWitnessIsBackWritesComplete() throws Exception {
        ReplCluster cluster = fixture.cluster(ClusterSpec.withWitness(2).sizeBytes(SIZE).onNoQuorum("io-error"))
                .initializeUpToDate();
        ReplNode alpha = cluster.alpha();
        ReplNode beta = cluster.beta();
        ReplNode witness = cluster.witness();
        alpha.verb("primary");
        losesTheWitnessAndGoesOn(cluster);

        beta.sigstop();
        long started = System.nanoTime();
        var failed = ExternalCommand.of("qemu-io", "-f", "raw", alpha.nbdUri(), "-c", "write -P 0x33 8M 1M")
                .timeout(FAILS_WITHIN).run();
        double failedAfter = (System.nanoTime() - started) / 1e9;
        assertFalse(failed.timedOut(), () -> "with io-error the write must fail, not wait:\n" + failed.describe());
        assertNotEquals(0, failed.exitCode(), failed::describe);
        assertTrue(failed.stderr().contains("Input/output error") || failed.stdout().contains("Input/output error"),
                failed::describe);
        ResourceView alone = cluster.await(alpha, "alone: no quorum", v -> !v.quorum(), Duration.ofSeconds(30));
        assertTrue(alone.suspended() != null && alone.suspended().contains("fails"), alone::toString);
        System.out.printf("io-error: the write failed after %.1f s (%s); status: %s%n", failedAfter,
                firstLine(failed.stderr() + failed.stdout()), alone.suspended());

        // the witness comes back: alpha and the witness are a majority, beta leaves the in-sync set
        witness.start();
        cluster.awaitCluster("beta removed from the in-sync set, alpha Primary",
                v -> v.inSync().equals(List.of("alpha")) && v.primaries().equals(List.of("alpha")));
        ExternalCommand.of("qemu-io", "-f", "raw", alpha.nbdUri(), "-c", "write -P 0x44 16M 1M")
                .timeout(WRITE_TIMEOUT).runSuccessfully();

        beta.sigcont();
        cluster.awaitInSync();
        cluster.awaitCluster("beta back in the in-sync set", v -> v.inSync().equals(List.of("alpha", "beta")));
        ReplCluster.assertPattern(beta.disk(), 16L << 20, 1 << 20, (byte) 0x44);
        cluster.stopAll();
        cluster.assertDataAreasIdentical();
    }

    /** SIGKILL the witness; alpha and beta keep quorum and a write through alpha completes. */
    private static void losesTheWitnessAndGoesOn(ReplCluster cluster) throws Exception {
        ReplNode alpha = cluster.alpha();
        cluster.witness().kill9();
        ExternalCommand.of("qemu-io", "-f", "raw", alpha.nbdUri(), "-c", "write -P 0x11 0 4M")
                .timeout(WRITE_TIMEOUT).runSuccessfully();
        ClusterView view = cluster.awaitCluster("the witness unreachable, alpha still Primary with quorum",
                v -> !v.reachable(ClusterSpec.WITNESS) && v.quorum() && v.primaries().equals(List.of("alpha")));
        ResourceView a = alpha.status();
        assertTrue(a.quorum() && a.suspended() == null && a.peer().inSync(), a::toString);
        ReplCluster.assertPattern(cluster.beta().disk(), 0, 4 << 20, (byte) 0x11);
        System.out.println("witness killed: alpha and beta keep quorum (" + view.quorumWhy() + "); 4 MiB written "
                + "through alpha and replicated");
    }

    private BackgroundProcess startWrite(ReplNode node, String command, String logName) throws Exception {
        return fixture.startHelper(List.of(Tools.require("qemu-io").toString(), "-f", "raw", node.nbdUri(), "-c",
                command), logName);
    }

    private static String firstLine(String s) {
        String t = s.strip();
        int nl = t.indexOf('\n');
        return nl < 0 ? t : t.substring(0, nl);
    }
}
