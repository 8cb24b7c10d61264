package io.replstor.systemtest.repl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.replstor.systemtest.support.CommandResult;
import io.replstor.systemtest.support.TestData;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The store's Raft leader dies while a promotion is on its way. Three data nodes and a witness, all Secondary;
 * each round finds the leader through {@code GET /cluster}, starts {@code replctl primary r0} on a data node that
 * is not the leader and, after a seeded random delay (the replctl JVM needs about a second before its request
 * reaches the node, so the kill lands before, during or after the request), kills the leader with SIGKILL. The
 * promotion must succeed or fail with an error within its bound, never hang. The killed member is restarted; then
 * at most one node is Primary, the store lists at most one Primary, and each node's role agrees with the store's
 * list (a promotion that succeeded: that node, in both). The Primary is demoted and the next round starts.
 */
@Tag("system")
@Timeout(value = 300, unit = TimeUnit.SECONDS)
class LeaderKillDuringPromotionTest {
    private static final int ROUNDS = 10;
    /** replctl's JVM (about 1 s), the store's request budget (about two leases: 4 s) and margin. */
    private static final Duration PROMOTE_BOUND = Duration.ofSeconds(15);
    private static final int MAX_KILL_DELAY_MILLIS = 2000;
    private static final Duration SETTLE = Duration.ofSeconds(30);

    @RegisterExtension
    final ReplFixture fixture = new ReplFixture();

    @Test
    void aPromotionDuringTheLeadersDeathSucceedsOrFailsAndLeavesAtMostOnePrimary() throws Exception {
        SplittableRandom random = TestData.seededRandom("LeaderKillDuringPromotionTest, candidates and kill delays");
        ReplCluster cluster = fixture.cluster(ClusterSpec.withWitness(3).sizeBytes(16L << 20)).initializeUpToDate();
        int succeeded = 0;
        for (int round = 1; round <= ROUNDS; round++) {
            int r = round;
            ReplNode leader = cluster.leader();
            List<ReplNode> candidates = cluster.nodes().stream().filter(n -> n != leader).toList();
            ReplNode candidate = candidates.get(random.nextInt(candidates.size()));
            int delay = random.nextInt(MAX_KILL_DELAY_MILLIS);

            CompletableFuture<CommandResult> promotion = CompletableFuture.supplyAsync(
                    () -> candidate.replctlWithin(PROMOTE_BOUND, "primary"));
            ReplNode.sleep(delay);
            leader.kill9();
            CommandResult result = promotion.get(PROMOTE_BOUND.toSeconds() + 10, TimeUnit.SECONDS);
            assertFalse(result.timedOut(), () -> "round " + r + ": the promotion hung while the leader "
                    + leader.name() + " died:\n" + result.describe());
            assertTrue(result.exitCode() == 0 || result.exitCode() == 1, () -> "round " + r + ": the promotion "
                    + "must succeed (0) or be refused by the node (1):\n" + result.describe());
            boolean promoted = result.exitCode() == 0;
            succeeded += promoted ? 1 : 0;

            leader.start();
            Map<String, String> roles = awaitAgreement(cluster, r);
            ClusterView store = cluster.awaitCluster("round " + r + ": the store's view", v -> true);
            List<String> primaries = store.primaries();
            long localPrimaries = roles.values().stream().filter("Primary"::equals).count();
            assertTrue(localPrimaries <= 1, () -> "round " + r + ": more than one node is Primary: " + roles);
            assertTrue(primaries.size() <= 1, () -> "round " + r + ": the store lists " + primaries + "\n" + store);
            if (promoted) {
                assertEquals(List.of(candidate.name()), primaries, () -> "round " + r + ": " + candidate.name()
                        + "'s promotion succeeded, so the store must list it:\n" + store);
                assertEquals("Primary", roles.get(candidate.name()), () -> "round " + r + ": " + roles);
            }
            System.out.printf("round %2d: leader %s killed %4d ms after %s's replctl primary started: %s (%d ms); "
                    + "after %s restarted: store Primaries %s, node roles %s%n", r, leader.name(), delay,
                    candidate.name(), promoted ? "promoted" : "refused: " + firstLine(result.stderr()),
                    result.elapsed().toMillis(), leader.name(), primaries, roles);

            // the next round starts from all Secondary, every data node in sync and in the in-sync set
            cluster.awaitInSync();
            cluster.awaitCluster("round " + r + ": every data node in the in-sync set",
                    v -> v.inSync().equals(List.of("alpha", "beta", "gamma")));
            for (ReplNode node : cluster.nodes()) {
                if ("Primary".equals(node.status().role())) {
                    node.verb("secondary");
                }
            }
            cluster.awaitCluster("round " + r + ": no Primary", v -> v.primaries().isEmpty());
        }
        System.out.println("LeaderKillDuringPromotionTest: " + succeeded + " of " + ROUNDS
                + " promotions succeeded while the leader was killed, " + (ROUNDS - succeeded) + " were refused");
    }

    /**
     * Waits until the store (a linearizable read) and every data node agree on who is Primary: a node reports
     * Primary exactly when the store lists it. A promotion refused by the timeout may still commit later and is then
     * undone by the node; either way the two must come to agree. Returns each node's role.
     */
    private static Map<String, String> awaitAgreement(ReplCluster cluster, int round) {
        long deadline = System.nanoTime() + SETTLE.toNanos();
        String last = "";
        while (true) {
            try {
                Map<String, String> roles = new LinkedHashMap<>();
                for (ReplNode node : cluster.nodes()) {
                    roles.put(node.name(), node.status().role());
                }
                ClusterView store = cluster.awaitCluster("round " + round + ": the store's view", v -> true);
                List<String> localPrimaries = new ArrayList<>();
                roles.forEach((n, role) -> {
                    if ("Primary".equals(role)) {
                        localPrimaries.add(n);
                    }
                });
                if (localPrimaries.equals(store.primaries())) {
                    return roles;
                }
                last = "nodes " + roles + ", " + store;
            } catch (IOException e) {
                last = "admin API: " + e;
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("round " + round + ": the nodes and the store do not agree on the Primary "
                        + "after " + SETTLE.toSeconds() + " s: " + last);
            }
            ReplNode.sleep(200);
        }
    }

    private static String firstLine(String s) {
        String t = s.strip();
        int nl = t.indexOf('\n');
        return nl < 0 ? t : t.substring(0, nl);
    }
}
