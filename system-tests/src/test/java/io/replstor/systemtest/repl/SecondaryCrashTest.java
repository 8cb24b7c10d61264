package io.replstor.systemtest.repl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.replstor.systemtest.support.BackgroundProcess;
import java.time.Duration;
import java.util.List;
import java.util.OptionalInt;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The Secondary crashes (SIGKILL) while the Primary is being written to, and comes back. Its metadata records the
 * unclean shutdown; restarted with {@code --no-up} and brought up with {@code replctl up} while
 * {@code replctl events} watches, its disk is Consistent (not UpToDate: it cannot know what it missed) until it has
 * connected, then it is SyncTarget, then UpToDate. The
 * resync moves some blocks, not the whole volume; fio on the Primary never notices; the replicas end identical.
 */
@Tag("system")
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class SecondaryCrashTest {
    private static final String[] LOAD = {"--rate_iops=2000", "--time_based", "--runtime=10", "--randseed=44"};
    private static final Duration FIO_TIMEOUT = Duration.ofSeconds(60);
    private static final ObjectMapper JSON = new ObjectMapper();

    @RegisterExtension
    final ReplFixture fixture = new ReplFixture();

    @Test
    void killedSecondaryComesBackConsistentAndResyncsAsTarget() throws Exception {
        ReplCluster cluster = fixture.cluster(ClusterSpec.twoNodes()).initializeUpToDate();
        ReplNode alpha = cluster.alpha();
        ReplNode beta = cluster.beta();
        alpha.verb("primary");

        BackgroundProcess fio = Fio.start(fixture, Fio.load("sec", alpha.nbdUri(), 0, cluster.sizeBytes(), 16, LOAD),
                "fio.log");
        cluster.await(alpha, "1 MiB of fio's writes replicated", v -> v.peer().sentBytes() >= 1 << 20);
        beta.kill9();
        ResourceView lost = cluster.await(alpha, "sees beta gone", v -> !v.peer().connected());
        assertEquals("Primary", lost.role(), lost::toString);

        // offline, the metadata shows the crash and data that is at least consistent
        JsonNode md = JSON.readTree(beta.verb("dump-md", "--json").stdout());
        assertFalse(md.path("activity_log").path("clean_shutdown").asBoolean(true),
                () -> "beta was killed: its metadata must say so:\n" + md.toPrettyString());
        assertTrue(md.path("consistent").asBoolean(false), md::toPrettyString);

        beta.start(true);
        ResourceView down = beta.status();
        assertFalse(down.up(), () -> "--no-up leaves r0 down:\n" + down);
        EventLog events = beta.followEvents("beta-events.log").awaitInitialState(Duration.ofSeconds(30));
        beta.verb("up");
        cluster.awaitInSync();

        OptionalInt fioExit = fio.awaitExit(FIO_TIMEOUT);
        assertEquals(OptionalInt.of(0), fioExit, () -> "fio on the Primary must not notice:\n" + fio.log());
        cluster.awaitInSync();

        ResourceView b = beta.status();
        long received = b.peer().resyncReceivedBytes();
        assertTrue(received > 0, () -> "beta must have resynced what it missed:\n" + b);
        assertTrue(received < cluster.sizeBytes(), () -> "a bitmap-based resync, not a full one:\n" + b);

        List<JsonNode> seen = events.events();
        int consistent = indexOf(seen, 0, e -> "resource".equals(e.path("object").asText())
                && "Consistent".equals(e.path("disk").asText()));
        int syncTarget = indexOf(seen, consistent + 1, e -> "peer-device".equals(e.path("object").asText())
                && "SyncTarget".equals(e.path("replication").asText()));
        int upToDate = indexOf(seen, syncTarget + 1, e -> "resource".equals(e.path("object").asText())
                && "UpToDate".equals(e.path("disk").asText()));
        String all = events.text();
        assertTrue(consistent >= 0, () -> "after up, beta's disk must be Consistent before it connects:\n" + all);
        assertTrue(syncTarget > consistent, () -> "then beta must be SyncTarget:\n" + all);
        assertTrue(upToDate > syncTarget, () -> "then UpToDate:\n" + all);
        System.out.println("secondary crash: beta resynced " + received + " bytes as SyncTarget (volume "
                + cluster.sizeBytes() + ")");

        cluster.stopAll();
        cluster.assertDataAreasIdentical();
    }

    /** The first event from {@code from} on that matches, or -1. */
    private static int indexOf(List<JsonNode> events, int from, java.util.function.Predicate<JsonNode> p) {
        for (int i = Math.max(0, from); i < events.size(); i++) {
            if (p.test(events.get(i))) {
                return i;
            }
        }
        return -1;
    }
}
