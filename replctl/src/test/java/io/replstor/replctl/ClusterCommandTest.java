package io.replstor.replctl;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code replctl cluster status} against a fake node answering {@code GET /cluster}. */
@Timeout(30)
class ClusterCommandTest extends FakeNodeTestBase {
    private static final String CLUSTER = """
            {"cluster":"prod","node":"alpha","stale":false,"quorum":{"present":true,"why":"leader beta"},
             "leader":"beta",
             "members":[{"name":"alpha","role":"data","this_node":true,"reachable":true,"last_seen_ms":10},
                        {"name":"beta","role":"data","this_node":false,"reachable":true,"last_seen_ms":300},
                        {"name":"tie","role":"witness","this_node":false,"reachable":false,"last_seen_ms":12300}],
             "resources":[{"name":"r0","term":7,"primaries":["alpha"],"in_sync":["alpha","beta"],
                           "last_change":"term 7: alpha promoted (replctl primary --force: beta's disk died)",
                           "forced":{"node":"alpha","term":7,"reason":"replctl primary --force: beta's disk died"}}]}
            """;

    @Test
    void humanFormListsMembersLeaderAndPerResourceTermPrimariesAndInSyncSet() {
        node.route(r -> FakeNode.ok(CLUSTER));
        Cli.Result res = run("cluster", "status");
        assertEquals(0, res.exit(), res::toString);
        assertEquals("/cluster", node.last().uri());
        assertEquals("""
                cluster prod: quorum:yes leader:beta
                  alpha data reachable (this node)
                  beta data reachable leader
                  tie witness unreachable last-seen:12.3s ago
                r0 term:7 primaries:alpha in-sync:alpha,beta
                  last-change:term 7: alpha promoted (replctl primary --force: beta's disk died)
                  forced:alpha in term 7: replctl primary --force: beta's disk died
                """, res.out());
    }

    @Test
    void withoutQuorumItSaysWhyAndThatTheViewIsThisNodesOwn() {
        node.route(r -> FakeNode.ok(CLUSTER.replace("\"stale\":false", "\"stale\":true")
                .replace("{\"present\":true,\"why\":\"leader beta\"}",
                        "{\"present\":false,\"why\":\"no quorum: not heard from beta, tie for 4.1 s\"}")));
        Cli.Result res = run("cluster", "status");
        assertEquals(0, res.exit(), res::toString);
        assertTrue(res.out().startsWith("cluster prod: quorum:no leader:beta (this node's last view: no quorum)\n"
                + "  why:no quorum: not heard from beta, tie for 4.1 s\n"), res::toString);
    }

    @Test
    void jsonIsTheNodesAnswerAsIs() {
        node.route(r -> FakeNode.ok(CLUSTER));
        Cli.Result res = run("cluster", "status", "--json");
        assertEquals(0, res.exit(), res::toString);
        assertEquals(CLUSTER.endsWith("\n") ? CLUSTER : CLUSTER + "\n", res.out());
    }

    @Test
    void aNodeThatCannotAnswerIsExitOneWithItsMessage() {
        node.route(r -> FakeNode.error(503, "the cluster store did not answer: timeout", "unavailable"));
        Cli.Result res = run("cluster", "status");
        assertEquals(1, res.exit(), res::toString);
        assertTrue(res.err().contains("the cluster store did not answer: timeout"), res::toString);
    }

    @Test
    void statusShowsTermQuorumInSyncSetSuspensionAndWarnings() {
        node.route(r -> FakeNode.ok("""
                {"node":"alpha","resources":[{"name":"r0","up":true,"role":"Primary","disk":"UpToDate",
                 "cluster_store":true,"term":7,"quorum":false,"quorum_detail":"no quorum: not heard from beta, tie",
                 "in_sync":["alpha","beta"],"suspended":"I/O suspended: writes wait until beta's removal is committed",
                 "warnings":[],"peers":[]}]}
                """));
        Cli.Result res = run("status");
        assertEquals(0, res.exit(), res::toString);
        assertEquals("""
                r0 role:Primary term:7 quorum:no
                  disk:UpToDate in-sync:alpha,beta
                  suspended:I/O suspended: writes wait until beta's removal is committed
                  quorum:no no quorum: not heard from beta, tie
                """, res.out());
        node.route(r -> FakeNode.ok("""
                {"node":"alpha","resources":[{"name":"r0","up":true,"role":"Secondary","disk":"UpToDate",
                 "cluster_store":false,"warnings":["quorum off: split brain is possible"],"peers":[]}]}
                """));
        assertEquals("""
                r0 role:Secondary quorum:off
                  disk:UpToDate
                  warning:quorum off: split brain is possible
                """, run("status").out());
    }
}
