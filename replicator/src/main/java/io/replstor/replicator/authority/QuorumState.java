package io.replstor.replicator.authority;

/**
 * Whether this node can commit decisions right now.
 *
 * @param present true if this node is in contact with a majority of the cluster store (or the cluster
 *                runs without one)
 * @param why     a sentence for status and events: "member of a majority (leader beta)", "no quorum:
 *                alpha and witness unreachable for 4.1 s", "quorum off"
 */
public record QuorumState(boolean present, String why) {
    public static final QuorumState OFF = new QuorumState(true, "quorum off: each node decides from its own view");
}
