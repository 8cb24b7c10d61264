package io.replstor.systemtest.repl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.replstor.systemtest.support.CommandResult;
import io.replstor.systemtest.support.ExternalCommand;
import io.replstor.systemtest.support.TestData;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Every data node is Secondary; one NBD client per data node (qemu-io, each writing 1 MiB of its own byte at offset
 * 0) is started at the same instant, so that each node's auto-promote asks the cluster store to make it Primary at
 * once. Exactly one client succeeds; every other one is refused during the NBD handshake, and the reason qemu-io
 * prints (the server's) names the winner. When the winner's client leaves, its node demotes; then every replica
 * holds the winner's pattern at [0, 1 MiB) and the replicas' data areas are identical. 50 rounds with two data
 * nodes and a witness, 50 with three data nodes and a witness.
 *
 * <p>The winner's client keeps its connection for {@value #HOLD_MILLIS} ms after its write: a loser whose qemu-io
 * the machine started that much later than the others would otherwise find the winner already demoted and win
 * too, one after the other (not a race the store decides). The order in which the clients are released comes from
 * a seeded shuffle ({@code -Dreplstor.systemtest.seed=N}).
 */
@Tag("system")
@Timeout(value = 300, unit = TimeUnit.SECONDS)
class ConcurrentPromotionTest {
    private static final int ROUNDS = 50;
    private static final long SIZE = 8L << 20;
    private static final int WRITE_BYTES = 1 << 20;
    private static final long HOLD_MILLIS = 800;
    private static final Duration CLIENT_TIMEOUT = Duration.ofSeconds(30);
    private static final Duration ROUND_SETTLE = Duration.ofSeconds(30);

    @RegisterExtension
    final ReplFixture fixture = new ReplFixture();

    @Test
    void exactlyOneOfTwoSimultaneousClientsPromotesItsNodeAndTheOtherIsToldWhoWon() throws Exception {
        rounds(2);
    }

    @Test
    void exactlyOneOfThreeSimultaneousClientsPromotesItsNodeAndTheOthersAreToldWhoWon() throws Exception {
        rounds(3);
    }

    private void rounds(int dataNodes) throws Exception {
        SplittableRandom random = TestData.seededRandom("ConcurrentPromotionTest, " + dataNodes
                + " data nodes + witness, order of the clients");
        ReplCluster cluster = fixture.cluster(ClusterSpec.withWitness(dataNodes).sizeBytes(SIZE))
                .initializeUpToDate();
        List<ReplNode> nodes = cluster.nodes();
        Map<String, Integer> wins = new LinkedHashMap<>();
        nodes.forEach(n -> wins.put(n.name(), 0));
        ExecutorService pool = Executors.newFixedThreadPool(dataNodes);
        try {
            for (int round = 1; round <= ROUNDS; round++) {
                int r = round;
                List<ReplNode> order = new ArrayList<>(nodes);
                for (int i = order.size() - 1; i > 0; i--) {
                    Collections.swap(order, i, random.nextInt(i + 1));
                }
                Map<String, Byte> patterns = new LinkedHashMap<>();
                for (int i = 0; i < nodes.size(); i++) {
                    // differs between the nodes of a round and from every node's pattern of the round before
                    patterns.put(nodes.get(i).name(), (byte) (1 + (round * 4 + i) % 250));
                }

                Map<String, CommandResult> results = race(pool, order, patterns);

                List<String> winners = results.entrySet().stream().filter(e -> e.getValue().exitCode() == 0)
                        .map(Map.Entry::getKey).toList();
                String all = describe(results);
                assertEquals(1, winners.size(), () -> "round " + r + ": exactly one client must succeed:\n" + all);
                String winner = winners.get(0);
                StringBuilder line = new StringBuilder(String.format("round %2d: %s won (pattern 0x%02x, client "
                        + "%d ms)", r, winner, patterns.get(winner), results.get(winner).elapsed().toMillis()));
                for (Map.Entry<String, CommandResult> e : results.entrySet()) {
                    if (e.getKey().equals(winner)) {
                        continue;
                    }
                    CommandResult refused = e.getValue();
                    assertFalse(refused.timedOut(), () -> "round " + r + ": a client hung:\n" + all);
                    String reason = serverReason(refused.stderr());
                    assertTrue(reason != null && reason.contains("cannot be used on " + e.getKey())
                            && reason.contains(winner + " is Primary"), () -> "round " + r + ": " + e.getKey()
                            + "'s client must be refused by the server, naming the winner " + winner + ":\n" + all);
                    line.append("; ").append(e.getKey()).append(" refused (").append(refused.elapsed().toMillis())
                            .append(" ms): ").append(shorten(reason));
                }
                System.out.println(line);
                wins.merge(winner, 1, Integer::sum);

                // the winner's client has left: its node demotes, the store records it
                cluster.awaitAll("round " + r + ": every node Secondary after the clients left",
                        v -> "Secondary".equals(v.role()), ROUND_SETTLE);
                cluster.awaitCluster("round " + r + ": the store lists no Primary", v -> v.primaries().isEmpty(),
                        ROUND_SETTLE);
                cluster.awaitInSync();
                cluster.assertDataAreasIdentical();
                ReplCluster.assertPattern(cluster.alpha().disk(), 0, WRITE_BYTES, patterns.get(winner));
            }
        } finally {
            pool.shutdownNow();
        }
        System.out.println("ConcurrentPromotionTest, " + dataNodes + " data nodes: wins per node over " + ROUNDS
                + " rounds: " + wins);
    }

    /** Starts one qemu-io per node at the same instant (released in {@code order}); the results by node name. */
    private static Map<String, CommandResult> race(ExecutorService pool, List<ReplNode> order,
                                                   Map<String, Byte> patterns) throws Exception {
        CountDownLatch ready = new CountDownLatch(order.size());
        CountDownLatch go = new CountDownLatch(1);
        Map<String, Future<CommandResult>> futures = new LinkedHashMap<>();
        for (ReplNode node : order) {
            ExternalCommand client = ExternalCommand.of("qemu-io", "-f", "raw", node.nbdUri(),
                    "-c", String.format("write -P 0x%02x 0 %d", patterns.get(node.name()), WRITE_BYTES),
                    "-c", "sleep " + HOLD_MILLIS).timeout(CLIENT_TIMEOUT);
            futures.put(node.name(), pool.submit(() -> {
                ready.countDown();
                go.await();
                return client.run();
            }));
        }
        ready.await();
        go.countDown();
        Map<String, CommandResult> results = new LinkedHashMap<>();
        for (ReplNode node : patternsOrder(patterns, order)) {
            results.put(node.name(), futures.get(node.name()).get(CLIENT_TIMEOUT.toSeconds() + 10, TimeUnit.SECONDS));
        }
        return results;
    }

    /** The nodes in file order (the patterns map's), for stable output. */
    private static List<ReplNode> patternsOrder(Map<String, Byte> patterns, List<ReplNode> nodes) {
        return patterns.keySet().stream().map(n -> nodes.stream().filter(x -> x.name().equals(n)).findFirst()
                .orElseThrow()).toList();
    }

    /** What qemu-io quotes of the server's refusal ("server reported: ..."), or null. */
    private static String serverReason(String stderr) {
        int at = stderr.indexOf("server reported: ");
        return at < 0 ? null : stderr.substring(at + "server reported: ".length()).strip();
    }

    private static String shorten(String s) {
        return s.length() <= 140 ? s : s.substring(0, 140) + "...";
    }

    private static String describe(Map<String, CommandResult> results) {
        StringBuilder b = new StringBuilder();
        results.forEach((node, result) -> b.append("== client of ").append(node).append(":\n")
                .append(result.describe()).append('\n'));
        return b.toString();
    }
}
