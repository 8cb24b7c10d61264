package io.replstor.systemtest.repl;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.replstor.systemtest.support.TestData;
import java.nio.file.Files;
import java.time.Duration;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Replicating a volume that already holds data: alpha's backing file has 64 MiB of random data (at the start and
 * in the middle of a 512 MiB volume) before create-md appends the metadata. Both nodes connect Inconsistent;
 * {@code primary --force} on alpha makes it UpToDate and beta does a full sync from it, at c-max-rate (100 MiB/s by
 * default), with its progress visible in the status and in {@code events}. The data areas are identical afterwards.
 */
@Tag("system")
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class InitialFullSyncTest {
    private static final long SIZE = 512L << 20;
    private static final long DATA = 32L << 20;

    @RegisterExtension
    final ReplFixture fixture = new ReplFixture();

    @Test
    void forcedPrimaryWithExistingDataFullySyncsThePeerWithVisibleProgress() throws Exception {
        ReplCluster cluster = fixture.cluster(ClusterSpec.twoNodes().sizeBytes(SIZE));
        ReplNode alpha = cluster.alpha();
        ReplNode beta = cluster.beta();
        SplittableRandom random = TestData.seededRandom("existing data");
        Files.createFile(alpha.disk());
        TestData.writeRandom(alpha.disk(), 0, DATA, random);
        TestData.writeRandom(alpha.disk(), SIZE / 2, DATA, random);
        byte[] head = TestData.read(alpha.disk(), 0, 1 << 20);
        byte[] middle = TestData.read(alpha.disk(), SIZE / 2 + DATA - (1 << 20), 1 << 20);

        cluster.createMetadata();
        cluster.startAll();
        cluster.awaitAll("connected, both Inconsistent, no sync", v -> "Inconsistent".equals(v.disk())
                && v.peer().connected() && "Established".equals(v.peer().replication()), ReplCluster.DEFAULT_WAIT);
        EventLog events = beta.followEvents("beta-events.log").awaitInitialState(Duration.ofSeconds(30));

        alpha.verb("primary", "--force");
        double progress = -1;
        double firstProgress = -1;
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        ResourceView b;
        do {
            b = beta.status();
            double p = b.peer().syncPercent();
            if ("SyncTarget".equals(b.peer().replication()) && p > 0 && p < 100) {
                progress = p;
                if (firstProgress < 0) {
                    firstProgress = p;
                }
            }
            assertTrue(System.nanoTime() < deadline, "the full sync did not finish within 60 s:\n" + b);
            ReplNode.sleep(50);
        } while (!"UpToDate".equals(b.disk()));
        cluster.awaitInSync();

        double seen = progress;
        assertTrue(seen > 0 && seen < 100, "the status must show the sync in progress (0 < sync_percent < 100)");
        ResourceView a = alpha.status();
        assertEquals("Primary", a.role(), a::toString);
        ResourceView done = beta.status();
        assertEquals(SIZE, done.peer().resyncReceivedBytes(), () -> "a full sync moves the whole volume:\n" + done);
        List<JsonNode> seenEvents = events.events();
        assertTrue(seenEvents.stream().anyMatch(e -> "peer-device".equals(e.path("object").asText())
                        && "SyncTarget".equals(e.path("replication").asText())),
                () -> "events must show beta as SyncTarget:\n" + events.text());
        System.out.println("full sync: beta received " + done.peer().resyncReceivedBytes() + " bytes; sync_percent seen from "
                + firstProgress + " to " + seen);

        cluster.stopAll();
        assertArrayEquals(head, TestData.read(beta.disk(), 0, 1 << 20), "beta holds alpha's original data");
        assertArrayEquals(middle, TestData.read(beta.disk(), SIZE / 2 + DATA - (1 << 20), 1 << 20),
                "beta holds alpha's original data");
        cluster.assertDataAreasIdentical();
    }
}
