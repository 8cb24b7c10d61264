package io.replstor.cluster;

import io.replstor.replicator.config.ClusterConfig;
import io.replstor.replicator.config.NodeConfig;
import io.replstor.replicator.engine.ReplicationNode;
import io.replstor.replicator.engine.Resource;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code GET /cluster} of a cluster without a store ({@code quorum = "off"}): the same shape as the
 * store's answer, from this node's own view. Nobody arbitrates, so {@code stale} is always true and the
 * members' reachability is this node's peer connections.
 */
final class LocalClusterStatus {
    private LocalClusterStatus() {
    }

    static Map<String, Object> of(ClusterConfig config, ReplicationNode node) {
        Map<String, Object> s = new LinkedHashMap<>();
        s.put("cluster", config.name());
        s.put("mode", "quorum off");
        s.put("node", node == null ? null : node.self().name());
        s.put("stale", true);
        Map<String, Object> q = new LinkedHashMap<>();
        q.put("present", true);
        q.put("why", "quorum off: each node decides from its own view; split brain is possible and only detected");
        s.put("quorum", q);
        s.put("leader", null);
        List<Map<String, Object>> members = new ArrayList<>();
        for (NodeConfig n : config.nodes()) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("name", n.name());
            m.put("role", n.role().configName());
            boolean self = node != null && node.self().name().equals(n.name());
            m.put("this_node", self);
            m.put("reachable", self || connected(node, n.name()));
            members.add(m);
        }
        s.put("members", members);
        List<Map<String, Object>> resources = new ArrayList<>();
        if (node != null) {
            for (Resource r : node.resources()) {
                Map<String, Object> st = r.status();
                Map<String, Object> x = new LinkedHashMap<>();
                x.put("name", r.name());
                x.put("term", st.get("term"));
                x.put("primaries", st.get("primaries"));
                x.put("in_sync", st.get("in_sync"));
                x.put("last_change", st.get("last_role_change"));
                x.put("forced", null);
                resources.add(x);
            }
        }
        s.put("resources", resources);
        return s;
    }

    private static boolean connected(ReplicationNode node, String peer) {
        if (node == null) {
            return false;
        }
        for (Resource r : node.resources()) {
            for (Object o : (List<?>) r.status().get("peers")) {
                Map<?, ?> p = (Map<?, ?>) o;
                if (peer.equals(p.get("peer")) && "Connected".equals(p.get("connection"))) {
                    return true;
                }
            }
        }
        return false;
    }
}
