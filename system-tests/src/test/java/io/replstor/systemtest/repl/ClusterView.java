package io.replstor.systemtest.repl;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;

/**
 * A node's {@code GET /cluster} answer: the cluster store's members, leader and quorum, and per resource its term,
 * Primaries and in-sync set (cluster/README.md). {@link #stale()} is false when the answer is a linearizable read
 * through the leader (what the store has committed), true when it is the node's own applied state without quorum.
 * {@link #toString()} is the JSON, so assertion messages show the whole answer.
 */
record ClusterView(String node, JsonNode json) {

    String leader() {
        JsonNode leader = json.path("leader");
        return leader.isMissingNode() || leader.isNull() ? null : leader.asText();
    }

    boolean quorum() {
        return json.path("quorum").path("present").asBoolean(false);
    }

    String quorumWhy() {
        return json.path("quorum").path("why").asText(null);
    }

    boolean stale() {
        return json.path("stale").asBoolean(true);
    }

    /** The members' names in file order. */
    List<String> members() {
        List<String> names = new ArrayList<>();
        json.path("members").forEach(m -> names.add(m.path("name").asText()));
        return names;
    }

    /** Whether this node currently hears from {@code member} (its own entry is always reachable). */
    boolean reachable(String member) {
        for (JsonNode m : json.path("members")) {
            if (member.equals(m.path("name").asText())) {
                return m.path("reachable").asBoolean(false);
            }
        }
        throw new AssertionError(node + ": no member " + member + " in GET /cluster: " + json.toPrettyString());
    }

    long term() {
        return resource().path("term").asLong(-1);
    }

    List<String> primaries() {
        return names(resource().path("primaries"));
    }

    List<String> inSync() {
        return names(resource().path("in_sync"));
    }

    String lastChange() {
        return resource().path("last_change").asText(null);
    }

    /** The raft gateway's count of refused connections on this node. */
    long gatewayRefused() {
        return json.path("gateway").path("refused").asLong();
    }

    String gatewayLastRefusal() {
        JsonNode r = json.path("gateway").path("last_refusal");
        return r.isMissingNode() || r.isNull() ? null : r.asText();
    }

    private JsonNode resource() {
        for (JsonNode r : json.path("resources")) {
            if (ClusterSpec.RESOURCE.equals(r.path("name").asText())) {
                return r;
            }
        }
        throw new AssertionError(node + ": no resource " + ClusterSpec.RESOURCE + " in GET /cluster: "
                + json.toPrettyString());
    }

    private static List<String> names(JsonNode array) {
        List<String> names = new ArrayList<>();
        array.forEach(n -> names.add(n.asText()));
        return names;
    }

    @Override
    public String toString() {
        return node + " GET /cluster: " + json;
    }
}
