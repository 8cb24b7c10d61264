package io.replstor.systemtest.repl;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * A Primary that has lost quorum must still stop cleanly on SIGTERM within the fixture's grace period (5 s):
 * cluster/README.md says SIGTERM demotes, tells the peers, flushes and closes the metadata and exits 0, and a
 * cleanly stopped Primary waits a bounded time (3 s) for the store to record its demotion.
 *
 * <p>The regression it guards: with {@code on-no-quorum = "suspend-io"}, the NBD server's closing FLUSH of a
 * Primary waited for a lease that could not come back, up to 10 minutes; a stopping node now fails the I/O
 * that waits for the cluster store (never acknowledged).
 */
@Tag("system")
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class PrimaryStopWithoutQuorumTest {
    @RegisterExtension
    final ReplFixture fixture = new ReplFixture();

    @Test
    void aPrimaryThatLostQuorumStopsOnSigtermWithinTheGracePeriod() throws Exception {
        ReplCluster cluster = fixture.cluster(ClusterSpec.withWitness(2).sizeBytes(16L << 20)).initializeUpToDate();
        ReplNode alpha = cluster.alpha();
        alpha.verb("primary");
        cluster.witness().kill9();
        cluster.beta().kill9();
        ResourceView alone = cluster.await(alpha, "alone: no quorum", v -> !v.quorum(), Duration.ofSeconds(30));
        assertTrue("Primary".equals(alone.role()), alone::toString);
        alpha.stop(); // SIGTERM; must exit 0 within the grace period
    }
}
