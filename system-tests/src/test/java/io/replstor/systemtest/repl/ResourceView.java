package io.replstor.systemtest.repl;

import com.fasterxml.jackson.databind.JsonNode;

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

    /** The only peer (every cluster in these tests has two nodes). */
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

    private static String text(JsonNode node, String field) {
        JsonNode value = node.path(field);
        return value.isMissingNode() || value.isNull() ? null : value.asText();
    }
}
