package io.replstor.systemtest.repl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.io.IOException;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Peers that must not replicate refuse each other and say why in {@code last_error}: a wrong shared secret
 * (authentication), a different volume size, and unrelated data (both made UpToDate independently, never
 * connected). Neither side's data changes: no sync starts.
 */
@Tag("system")
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ConnectRefusalTest {
    private static final Duration REFUSAL_WAIT = Duration.ofSeconds(30);

    @RegisterExtension
    final ReplFixture fixture = new ReplFixture();

    @Test
    void wrongSharedSecretIsRefusedAsAnAuthenticationFailure() throws IOException {
        ReplCluster cluster = fixture.cluster(ClusterSpec.twoNodes()
                .nodeSecret("alpha", "alpha-thinks-this-is-it").nodeSecret("beta", "beta-thinks-otherwise"));
        cluster.createMetadata().startAll();
        assertRefused(cluster, "authentication");
    }

    @Test
    void differentSizesAreRefused() throws IOException {
        ReplCluster cluster = fixture.cluster(ClusterSpec.twoNodes().sizeBytes(256L << 20)
                .nodeSize("beta", 128L << 20));
        cluster.createMetadata().startAll();
        assertRefused(cluster, "size");
    }

    @Test
    void unrelatedDataIsRefused() throws IOException {
        ReplCluster cluster = fixture.cluster(ClusterSpec.twoNodes());
        cluster.createMetadata();
        // each node on its own: forced UpToDate, a generation of its own, never connected to the other
        for (ReplNode node : cluster.nodes()) {
            node.start();
            node.verb("primary", "--force");
            cluster.await(node, "forced UpToDate", v -> "Primary".equals(v.role()) && "UpToDate".equals(v.disk()));
            node.verb("secondary");
            node.stop();
        }
        cluster.startAll();
        assertRefused(cluster, "unrelated data");
    }

    /** Waits until both nodes show a refusal mentioning {@code reason}; neither may be connected. */
    private static Map<String, ResourceView> assertRefused(ReplCluster cluster, String reason) {
        Map<String, ResourceView> views = cluster.awaitAll("a refusal naming " + reason,
                v -> !v.peer().connected() && ReplFixture.lower(v.peer().lastError()).contains(reason),
                REFUSAL_WAIT);
        for (ResourceView v : views.values()) {
            assertFalse(v.peer().connected(), v::toString);
            assertEquals(0, v.peer().resyncReceivedBytes() + v.peer().resyncSentBytes(), v::toString);
            System.out.println(v.node() + ": last_error: " + v.peer().lastError() + " (connection "
                    + v.peer().connection() + ")");
        }
        return views;
    }
}
