package io.replstor.cluster.store;

import io.replstor.replicator.authority.AuthorityException;
import io.replstor.replicator.authority.RoleView;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The cluster store with every member up: real Ratis on loopback, one-second leases. */
class ClusterStoreTest {
    private static final Duration QUORUM_WAIT = Duration.ofSeconds(15);
    private static final int ROUNDS = 50;

    @RegisterExtension
    final StoreCluster.Dirs dirs = new StoreCluster.Dirs();

    private StoreCluster cluster(String name, List<String> data, StoreTimings timings) throws IOException {
        StoreCluster c = StoreCluster.start(dirs, name, data, List.of("tie"), timings, "s3cret");
        c.awaitQuorum(QUORUM_WAIT);
        return c;
    }

    @Test
    @Timeout(90)
    void twoNodesPromotingAtTheSameInstantNeverBothWin() throws Exception {
        try (StoreCluster c = cluster("race2", List.of("alpha", "beta"), StoreCluster.oneSecondLease())) {
            race(c, List.of("alpha", "beta"));
        }
    }

    @Test
    @Timeout(90)
    void threeNodesPromotingAtTheSameInstantNeverBothWin() throws Exception {
        try (StoreCluster c = cluster("race3", List.of("alpha", "beta", "gamma"), StoreCluster.oneSecondLease())) {
            race(c, List.of("alpha", "beta", "gamma"));
        }
    }

    /**
     * {@value #ROUNDS} rounds: every contender promotes itself through its own store at the same instant;
     * exactly one wins, every loser is REFUSED naming the winner, the winner demotes, terms only grow.
     */
    private static void race(StoreCluster c, List<String> contenders) throws Exception {
        ExecutorService threads = Executors.newFixedThreadPool(contenders.size());
        CyclicBarrier start = new CyclicBarrier(contenders.size());
        long lastTerm = 0;
        try {
            for (int round = 0; round < ROUNDS; round++) {
                List<Future<Object>> results = new ArrayList<>();
                for (String node : contenders) {
                    String why = "round " + round;
                    results.add(threads.submit(() -> {
                        start.await(10, TimeUnit.SECONDS);
                        try {
                            return StoreCluster.get(c.store(node).promote("r0", node, false, why));
                        } catch (AuthorityException e) {
                            return e;
                        }
                    }));
                }
                List<RoleView> won = new ArrayList<>();
                List<AuthorityException> lost = new ArrayList<>();
                for (Future<Object> f : results) {
                    Object r = f.get(30, TimeUnit.SECONDS);
                    if (r instanceof RoleView v) {
                        won.add(v);
                    } else {
                        lost.add((AuthorityException) r);
                    }
                }
                assertEquals(1, won.size(), "round " + round + ": winners " + won + ", losers " + lost);
                RoleView w = won.get(0);
                String winner = w.primaries().iterator().next();
                assertEquals(1, w.primaries().size());
                assertTrue(w.term() > lastTerm, "round " + round + ": term " + w.term() + " after " + lastTerm);
                for (AuthorityException e : lost) {
                    assertEquals(AuthorityException.Code.REFUSED, e.code(), e.getMessage());
                    assertTrue(e.getMessage().startsWith(winner + " is Primary of r0 (term " + w.term() + ")"),
                            "round " + round + ": " + e.getMessage());
                }
                RoleView demoted = StoreCluster.get(c.store(winner).demote("r0", winner, "round " + round + " over"));
                assertEquals(w.term() + 1, demoted.term());
                assertEquals(Set.of(), demoted.primaries());
                lastTerm = demoted.term();
            }
        } finally {
            threads.shutdownNow();
        }
    }

    @Test
    @Timeout(60)
    void inSyncChangesNeedTheCurrentPrimaryAndOnlyInSyncNodesArePromotedUnlessForced() throws Exception {
        try (StoreCluster c = cluster("isr", List.of("alpha", "beta"), StoreCluster.oneSecondLease())) {
            ClusterStore alpha = c.store("alpha");
            ClusterStore beta = c.store("beta");
            long t1 = StoreCluster.get(alpha.promote("r0", "alpha", false, "test")).term();

            RoleView removed = StoreCluster.get(alpha.removeInSync("r0", "alpha", t1, "beta", "no ack for 6 s"));
            assertEquals(Set.of("alpha"), removed.inSync());
            assertEquals(t1, removed.term());
            AuthorityException old = assertThrows(AuthorityException.class,
                    () -> StoreCluster.get(alpha.addInSync("r0", "alpha", t1 - 1, "beta")));
            assertEquals(AuthorityException.Code.STALE_TERM, old.code());
            assertEquals("term " + (t1 - 1) + " is not current for r0: term " + t1 + ", Primary alpha", old.getMessage());
            AuthorityException notPrimary = assertThrows(AuthorityException.class,
                    () -> StoreCluster.get(beta.addInSync("r0", "beta", t1, "beta")));
            assertEquals(AuthorityException.Code.STALE_TERM, notPrimary.code());

            long t2 = StoreCluster.get(alpha.demote("r0", "alpha", "switchover")).term();
            AuthorityException outOfSync = assertThrows(AuthorityException.class,
                    () -> StoreCluster.get(beta.promote("r0", "beta", false, "switchover")));
            assertEquals(AuthorityException.Code.REFUSED, outOfSync.code());
            assertEquals("beta is not in the in-sync set of r0 [alpha]: it may lack acknowledged writes; resync it"
                    + " first, or promote with --force", outOfSync.getMessage());

            RoleView forced = StoreCluster.get(beta.promote("r0", "beta", true, "alpha's disk failed"));
            assertEquals(t2 + 1, forced.term());
            assertEquals(Set.of("beta"), forced.primaries());
            assertEquals(Set.of("beta"), forced.inSync());
            Map<String, Object> r0 = resource(beta.status().get(10, TimeUnit.SECONDS));
            assertEquals(Map.of("node", "beta", "term", forced.term(), "reason", "alpha's disk failed"),
                    r0.get("forced"));
            RoleView resynced = StoreCluster.get(beta.addInSync("r0", "beta", forced.term(), "alpha"));
            assertEquals(Set.of("alpha", "beta"), resynced.inSync());
            StoreCluster.await(Duration.ofSeconds(5), () -> alpha.view("r0").equals(resynced),
                    () -> "alpha applies it: " + alpha.view("r0"));
        }
    }

    @Test
    @Timeout(90)
    void allMembersRestartedFromDiskKeepTermsPrimariesAndInSyncSets() throws Exception {
        try (StoreCluster c = cluster("restart", List.of("alpha", "beta"), StoreCluster.oneSecondLease())) {
            RoleView before = changeEverything(c);
            restartAll(c);
            for (String n : List.of("alpha", "beta", "tie")) {
                StoreCluster.await(QUORUM_WAIT, () -> c.store(n).view("r0").equals(before),
                        () -> n + " restored " + c.store(n).view("r0") + ", expected " + before);
            }
        }
    }

    @Test
    @Timeout(90)
    @SuppressWarnings("unchecked")
    void restartRestoresFromTheLatestSnapshotPlusTheLogAfterIt() throws Exception {
        StoreTimings small = StoreCluster.oneSecondLease().withSnapshots(32, 4096);
        try (StoreCluster c = cluster("snap", List.of("alpha", "beta"), small)) {
            RoleView before = changeEverything(c);
            // renewals (3 members, 4 a second each) carry the log past a few snapshots
            StoreCluster.await(QUORUM_WAIT, () -> snapshots(c, "alpha").size() >= 2 && firstSegmentPurged(c, "alpha"),
                    () -> "snapshots " + snapshots(c, "alpha") + ", log " + files(c, "alpha", "current"));
            restartAll(c);
            for (String n : List.of("alpha", "beta", "tie")) {
                StoreCluster.await(QUORUM_WAIT, () -> c.store(n).view("r0").equals(before),
                        () -> n + " restored " + c.store(n).view("r0") + ", expected " + before);
                Map<String, Object> log = (Map<String, Object>) c.store(n).status().get(10, TimeUnit.SECONDS)
                        .get("log");
                assertTrue((Long) log.get("restored_snapshot_index") > 0, n + ": " + log);
            }
        }
    }

    /** Several role changes, a removal and a forced promotion: a state worth restoring. */
    private static RoleView changeEverything(StoreCluster c) throws AuthorityException {
        ClusterStore alpha = c.store("alpha");
        ClusterStore beta = c.store("beta");
        for (int i = 0; i < 5; i++) {
            StoreCluster.get(alpha.promote("r0", "alpha", false, "cycle " + i));
            StoreCluster.get(alpha.demote("r0", "alpha", "cycle " + i));
        }
        long t = StoreCluster.get(alpha.promote("r0", "alpha", false, "last")).term();
        StoreCluster.get(alpha.removeInSync("r0", "alpha", t, "beta", "no ack"));
        StoreCluster.get(alpha.demote("r0", "alpha", "gone"));
        RoleView forced = StoreCluster.get(beta.promote("r0", "beta", true, "operator"));
        return StoreCluster.get(beta.addInSync("r0", "beta", forced.term(), "alpha"));
    }

    private static void restartAll(StoreCluster c) throws IOException {
        List<String> names = c.nodes().stream().map(StoreCluster.Node::name).toList();
        names.forEach(c::kill);
        for (String n : names) {
            c.restart(n);
        }
    }

    @Test
    @Timeout(60)
    @SuppressWarnings("unchecked")
    void statusIsALinearizableReadListingMembersLeaderAndResources() throws Exception {
        try (StoreCluster c = cluster("status", List.of("alpha", "beta"), StoreCluster.oneSecondLease())) {
            RoleView v = StoreCluster.get(c.store("beta").promote("r0", "alpha", false, "test"));
            assertEquals(Set.of("alpha"), v.primaries());
            CompletableFuture<Map<String, Object>> f = c.store("beta").status();
            Map<String, Object> s = f.get(10, TimeUnit.SECONDS);
            assertEquals(false, s.get("stale"), s.toString());
            assertEquals("status", s.get("cluster"));
            assertNotNull(s.get("leader"));
            assertTrue((Boolean) ((Map<String, Object>) s.get("quorum")).get("present"));
            List<Map<String, Object>> members = (List<Map<String, Object>>) s.get("members");
            assertEquals(List.of("alpha", "beta", "tie"), members.stream().map(m -> m.get("name")).toList());
            assertEquals(List.of("data", "data", "witness"), members.stream().map(m -> m.get("role")).toList());
            assertEquals(List.of(false, true, false), members.stream().map(m -> m.get("this_node")).toList());
            assertTrue(members.stream().allMatch(m -> (Boolean) m.get("reachable")), members.toString());
            Map<String, Object> r0 = resource(s);
            assertEquals(v.term(), r0.get("term"));
            assertEquals(List.of("alpha"), r0.get("primaries"));
            assertEquals(List.of("alpha", "beta"), r0.get("in_sync"));
            assertEquals("term " + v.term() + ": alpha promoted (test)", r0.get("last_change"));
            assertFalse(r0.containsKey("forced") && r0.get("forced") != null);
        }
    }

    @Test
    @Timeout(30)
    void aStoreOfOneNodeDecidesAlone() throws Exception {
        try (StoreCluster c = StoreCluster.start(dirs, "solo", List.of("alpha"), List.of(),
                StoreCluster.oneSecondLease(), null)) {
            c.awaitQuorum(QUORUM_WAIT);
            ClusterStore alpha = c.store("alpha");
            assertEquals(Set.of("alpha"), StoreCluster.get(alpha.promote("r0", "alpha", false, "alone")).primaries());
            assertEquals("alpha", alpha.currentLeader());
            assertEquals(false, alpha.status().get(10, TimeUnit.SECONDS).get("stale"));
        }
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> resource(Map<String, Object> status) {
        List<Map<String, Object>> rs = (List<Map<String, Object>>) status.get("resources");
        assertEquals(1, rs.size(), rs.toString());
        return rs.get(0);
    }

    private static List<String> snapshots(StoreCluster c, String node) {
        return files(c, node, "sm").stream().filter(f -> f.matches("snapshot\\.\\d+_\\d+")).toList();
    }

    /** The segment that began the log (log_0-N or log_inprogress_0) is gone: entries from 0 live in a snapshot only. */
    private static boolean firstSegmentPurged(StoreCluster c, String node) {
        return files(c, node, "current").stream().noneMatch(f -> f.startsWith("log_0-") || f.equals("log_inprogress_0"));
    }

    private static List<String> files(StoreCluster c, String node, String sub) {
        Path groupDir = c.store(node).directory().resolve(ClusterStore.groupId(c.name()).getUuid().toString());
        try (Stream<Path> s = Files.list(groupDir.resolve(sub))) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        } catch (IOException e) {
            return List.of(e.toString());
        }
    }
}
