package io.replstor.systemtest.repl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.replstor.systemtest.support.BackgroundProcess;
import java.time.Duration;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The Primary crashes (SIGKILL) while writing to three 4 MiB extents of a 256 MiB volume. Its activity log names
 * the hot extents; when it is restarted (beta stays Secondary and is never promoted), only those extents are
 * resynced: more than nothing, at most 3 x 4 MiB, far less than the volume. The replicas end identical.
 */
@Tag("system")
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class ActivityLogResyncTest {
    private static final long EXTENT = 4L << 20;
    private static final long FIRST_EXTENT = 16;
    private static final int EXTENTS = 3;
    private static final String[] LOAD = {"--time_based", "--runtime=30", "--randseed=55"};
    private static final Duration FIO_TIMEOUT = Duration.ofSeconds(60);
    private static final ObjectMapper JSON = new ObjectMapper();

    @RegisterExtension
    final ReplFixture fixture = new ReplFixture();

    @Test
    void crashedPrimaryResyncsOnlyItsHotExtents() throws Exception {
        ReplCluster cluster = fixture.cluster(ClusterSpec.twoNodes()).initializeUpToDate();
        ReplNode alpha = cluster.alpha();
        ReplNode beta = cluster.beta();
        alpha.verb("primary");

        BackgroundProcess fio = Fio.start(fixture, Fio.load("al", alpha.nbdUri(), FIRST_EXTENT * EXTENT,
                EXTENTS * EXTENT, 32, LOAD), "fio.log");
        cluster.await(alpha, "8 MiB of fio's writes replicated", v -> v.peer().sentBytes() >= 8L << 20);
        assertTrue(fio.isAlive(), fio::log);
        alpha.kill9();
        fio.awaitExit(FIO_TIMEOUT);
        cluster.await(beta, "sees alpha gone, stays Secondary", v -> !v.peer().connected()
                && "Secondary".equals(v.role()));

        JsonNode md = JSON.readTree(alpha.verb("dump-md", "--json").stdout());
        JsonNode al = md.path("activity_log");
        assertFalse(al.path("clean_shutdown").asBoolean(true), md::toPrettyString);
        Set<Long> toResync = new TreeSet<>();
        al.path("extents_to_resync").forEach(e -> toResync.add(e.asLong()));
        Set<Long> written = new TreeSet<>();
        for (long e = FIRST_EXTENT; e < FIRST_EXTENT + EXTENTS; e++) {
            written.add(e);
        }
        assertEquals(written, toResync,
                () -> "the activity log must name exactly the extents being written:\n" + al.toPrettyString());

        ResourceView before = beta.status();
        long betaSentBefore = before.peer().resyncSentBytes();
        long betaReceivedBefore = before.peer().resyncReceivedBytes();
        alpha.start();
        cluster.awaitInSync();

        ResourceView a = alpha.status();
        ResourceView b = beta.status();
        long moved = (b.peer().resyncSentBytes() - betaSentBefore) + (b.peer().resyncReceivedBytes()
                - betaReceivedBefore);
        assertEquals(moved, a.peer().resyncSentBytes() + a.peer().resyncReceivedBytes(),
                () -> "both nodes must count the same resync:\n" + a + "\n" + b);
        assertTrue(moved > 0, () -> "the hot extents must be resynced:\n" + a + "\n" + b);
        assertTrue(moved <= EXTENTS * EXTENT, () -> "only the " + EXTENTS + " hot extents (" + EXTENTS * EXTENT
                + " bytes) may be resynced, not " + moved + ":\n" + a + "\n" + b);
        assertEquals("Secondary", b.role(), b::toString);
        System.out.println("activity log: " + moved + " bytes resynced after the Primary crash (extents " + toResync
                + ", volume " + cluster.sizeBytes() + ")");

        cluster.stopAll();
        cluster.assertDataAreasIdentical();
    }
}
