package io.replstor.cluster.store;

import io.replstor.replicator.authority.AuthorityException;
import io.replstor.replicator.authority.QuorumState;
import io.replstor.replicator.authority.RoleView;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The cluster store when members die: leases, deposition, quorum loss. One-second leases. */
class ClusterStoreFailureTest {
    private static final Duration QUORUM_WAIT = Duration.ofSeconds(15);

    @RegisterExtension
    final StoreCluster.Dirs dirs = new StoreCluster.Dirs();

    @Test
    @Timeout(60)
    void aDeadPrimaryIsReplacedOnlyAfterItsLeaseExpiredAndLearnsItOnRestart() throws Exception {
        StoreTimings timings = StoreCluster.oneSecondLease();
        try (StoreCluster c = StoreCluster.start(dirs, "dead", List.of("alpha", "beta"), List.of("tie"), timings,
                "s3cret")) {
            c.awaitQuorum(QUORUM_WAIT);
            RoleView first = StoreCluster.get(c.store("alpha").promote("r0", "alpha", false, "test"));
            long alphaLeaseEnds = System.nanoTime() + c.store("alpha").leaseRemainingNanos();
            c.kill("alpha");

            int refusals = 0;
            RoleView second;
            while (true) {
                try {
                    second = StoreCluster.get(c.store("beta").promote("r0", "beta", false, "alpha is dead"));
                    break;
                } catch (AuthorityException e) {
                    assertEquals(AuthorityException.Code.REFUSED, e.code(), e.getMessage());
                    assertTrue(e.getMessage().startsWith("alpha is Primary of r0 (term " + first.term() + ")"),
                            e.getMessage());
                    assertTrue(e.getMessage().contains("lease"), e.getMessage());
                    refusals++;
                    Thread.sleep(100);
                }
            }
            long promotedAt = System.nanoTime();
            assertTrue(refusals > 0, "refused while alpha's lease ran");
            assertTrue(promotedAt - alphaLeaseEnds > 0, "beta promoted " + (alphaLeaseEnds - promotedAt) / 1_000_000
                    + " ms before alpha's lease ended");
            assertEquals(first.term() + 1, second.term());
            assertEquals(Set.of("beta"), second.primaries());
            assertEquals(Set.of("alpha", "beta"), second.inSync(), "the deposed Primary stays in sync");
            assertTrue(second.lastChange().contains("deposing alpha"), second.lastChange());

            // alpha comes back: it is no longer Primary, and its lease runs again once it renews
            ClusterStore alpha = c.restart("alpha");
            List<RoleView> seen = new CopyOnWriteArrayList<>();
            alpha.watch("r0", seen::add);
            StoreCluster.await(QUORUM_WAIT, () -> seen.stream().anyMatch(v -> v.primaries().equals(Set.of("beta"))),
                    () -> "alpha's watcher saw " + seen + "; view " + alpha.view("r0"));
            assertFalse(alpha.view("r0").isPrimary("alpha"));
            StoreCluster.await(QUORUM_WAIT, alpha::leaseValid, () -> "alpha's lease: " + alpha.quorum());
        }
    }

    @Test
    @Timeout(60)
    @SuppressWarnings("unchecked")
    void aMemberWithoutMajorityLosesQuorumAndRequestsFailWithNoQuorumInBoundedTime() throws Exception {
        StoreTimings timings = StoreCluster.oneSecondLease();
        try (StoreCluster c = StoreCluster.start(dirs, "lost", List.of("alpha", "beta"), List.of("tie"), timings,
                "s3cret")) {
            c.awaitQuorum(QUORUM_WAIT);
            ClusterStore alpha = c.store("alpha");
            List<QuorumState> changes = new CopyOnWriteArrayList<>();
            alpha.watchQuorum(changes::add);
            c.kill("beta");
            c.kill("tie");
            long killed = System.nanoTime();

            // within two leases of the last death: no quorum, and both silent members named
            StoreCluster.await(timings.leaseTimeout().multipliedBy(2), () -> {
                QuorumState q = alpha.quorum();
                return !q.present() && q.why().contains("beta") && q.why().contains("tie");
            }, () -> "alpha: " + alpha.quorum());
            System.out.println("alpha: " + alpha.quorum().why() + " (" + (System.nanoTime() - killed) / 1_000_000
                    + " ms after the last death)");
            StoreCluster.await(Duration.ofSeconds(1), () -> changes.stream().anyMatch(q -> !q.present()),
                    () -> "no quorum loss delivered: " + changes);

            Map<String, Object> status = alpha.status().get(10, TimeUnit.SECONDS);
            assertEquals(true, status.get("stale"), "without quorum, status is this node's applied view");
            assertEquals(List.of(true, false, false), ((List<Map<String, Object>>) status.get("members")).stream()
                    .map(m -> m.get("this_node") == Boolean.TRUE || (Boolean) m.get("reachable")).toList());

            long asked = System.nanoTime();
            AuthorityException e = assertThrows(AuthorityException.class,
                    () -> StoreCluster.get(alpha.promote("r0", "alpha", false, "alone")));
            long tookMs = (System.nanoTime() - asked) / 1_000_000;
            assertEquals(AuthorityException.Code.NO_QUORUM, e.code(), e.getMessage());
            assertTrue(e.retryable());
            assertTrue(e.getMessage().contains("r0"), e.getMessage());
            long boundMs = timings.requestTimeout().plus(timings.attemptTimeout()).toMillis() + 500;
            assertTrue(tookMs <= boundMs, "NO_QUORUM after " + tookMs + " ms, bound " + boundMs + " ms");
            System.out.println("promote failed after " + tookMs + " ms: " + e.getMessage());

            c.restart("beta");
            StoreCluster.await(QUORUM_WAIT, () -> alpha.quorum().present(), () -> "alpha: " + alpha.quorum());
            StoreCluster.await(Duration.ofSeconds(1), () -> changes.get(changes.size() - 1).present(),
                    () -> "quorum changes " + changes);
            assertEquals(Set.of("alpha"), StoreCluster.get(alpha.promote("r0", "alpha", false, "back")).primaries());
        }
    }
}
