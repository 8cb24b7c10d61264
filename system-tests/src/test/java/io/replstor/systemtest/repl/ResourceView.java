package io.replstor.systemtest.repl;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;

/**
 * One resource in a node's {@code GET /status} answer (cluster/README.md), with typed getters for what the tests
 * check. {@link #toString()} is the node's JSON, so assertion messages show the whole state.
 */
record ResourceView(String node, JsonNode json) {

    boolean up() {
        return json.path("up").asBoolean(false);
    }

    /** Why the resource is not up (e.g. the corrupt metadata block), or null. */
    String error() {
        return text(json, "error");
    }

    String role() {
        return text(json, "role");
    }

    String disk() {
        return text(json, "disk");
    }

    long sizeBytes() {
        return json.path("size_bytes").asLong();
    }

    String currentUuid() {
        return text(json, "current_uuid");
    }

    /** Every peer, in file order. */
    List<Peer> peers() {
        List<Peer> peers = new ArrayList<>();
        json.path("peers").forEach(p -> peers.add(new Peer(p)));
        return peers;
    }

    /** The peer named {@code name}. */
    Peer peer(String name) {
        for (Peer p : peers()) {
            if (name.equals(p.name())) {
                return p;
            }
        }
        throw new AssertionError(node + ": no peer " + name + " in the status: " + json.toPrettyString());
    }

    /** Connected, Established, the peer UpToDate and nothing out of sync, with every peer (and at least one). */
    boolean allPeersInSync() {
        List<Peer> peers = peers();
        return !peers.isEmpty() && peers.stream().allMatch(Peer::inSync);
    }

    /** The term of the resource as this node's store member applied it (with quorum off: a local counter). */
    long term() {
        return json.path("term").asLong(-1);
    }

    List<String> primaries() {
        return names(json.path("primaries"));
    }

    List<String> inSync() {
        return names(json.path("in_sync"));
    }

    /** Whether this node is a member of a store majority (always true with quorum off). */
    boolean quorum() {
        return json.path("quorum").asBoolean(false);
    }

    String quorumDetail() {
        return text(json, "quorum_detail");
    }

    boolean leaseValid() {
        return json.path("lease_valid").asBoolean(false);
    }

    /** The replica lost a Primary while it held writes of it not known to be on every replica. */
    boolean unconfirmedWrites() {
        return json.path("unconfirmed_writes").asBoolean(false);
    }

    /** Why this Primary's I/O waits or fails (no quorum, lease lapsed), or null. */
    String suspended() {
        return text(json, "suspended");
    }

    List<String> warnings() {
        return names(json.path("warnings"));
    }

    /** The only peer (a two-node cluster). */
    Peer peer() {
        JsonNode peers = json.path("peers");
        if (!peers.isArray() || peers.size() != 1) {
            throw new AssertionError(node + ": expected exactly one peer in the status: " + json.toPrettyString());
        }
        return new Peer(peers.get(0));
    }

    boolean hasPeer() {
        return json.path("peers").isArray() && json.path("peers").size() == 1;
    }

    @Override
    public String toString() {
        return node + ": " + json.toPrettyString();
    }

    /** A peer entry: connection, replication, counters. */
    record Peer(JsonNode json) {
        String name() {
            return text(json, "peer");
        }

        String connection() {
            return text(json, "connection");
        }

        String replication() {
            return text(json, "replication");
        }

        String peerRole() {
            return text(json, "peer_role");
        }

        String peerDisk() {
            return text(json, "peer_disk");
        }

        long outOfSyncBytes() {
            return json.path("out_of_sync_bytes").asLong();
        }

        double syncPercent() {
            return json.path("sync_percent").asDouble();
        }

        String lastError() {
            return text(json, "last_error");
        }

        long sentBytes() {
            return json.path("sent_bytes").asLong();
        }

        long receivedBytes() {
            return json.path("received_bytes").asLong();
        }

        long resyncSentBytes() {
            return json.path("resync_sent_bytes").asLong();
        }

        long resyncReceivedBytes() {
            return json.path("resync_received_bytes").asLong();
        }

        boolean connected() {
            return "Connected".equals(connection());
        }

        /** Connected, no resync running or pending, the peer's disk UpToDate. */
        boolean inSync() {
            return connected() && "Established".equals(replication()) && "UpToDate".equals(peerDisk())
                    && outOfSyncBytes() == 0;
        }
    }

    private static List<String> names(JsonNode array) {
        List<String> names = new ArrayList<>();
        array.forEach(n -> names.add(n.asText()));
        return names;
    }

    private static String text(JsonNode node, String field) {
        JsonNode value = node.path(field);
        return value.isMissingNode() || value.isNull() ? null : value.asText();
    }
}
