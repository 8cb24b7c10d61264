package io.replstor.replicator.sync;

import java.util.Objects;

/**
 * One side of a connect handshake: who it is, its generation identifiers, and what the split-brain
 * policies look at.
 *
 * @param nodeId        the node id from the configuration, 0..31
 * @param nodeName      the node name from the configuration; reasons and {@code discard-node-NAME} use it
 * @param ids           its generation identifiers for this peer
 * @param primary       its role now (after-sb policies count primaries)
 * @param dirtyBits     bits set in its bitmap for the peer: blocks it changed since the two were in
 *                      sync (discard-zero-changes, discard-least-changes)
 * @param discardMyData the operator ran {@code connect --discard-my-data} on this side
 * @param dataTerm      the newest cluster-store term of any write its disk holds (0: none, or no store)
 */
public record SyncSide(int nodeId, String nodeName, GenerationIds ids, boolean primary, long dirtyBits,
                       boolean discardMyData, long dataTerm) {

    public static final int MAX_NODE_ID = 31;

    public SyncSide {
        if (nodeId < 0 || nodeId > MAX_NODE_ID) {
            throw new IllegalArgumentException("node id " + nodeId + " out of range 0.." + MAX_NODE_ID);
        }
        Objects.requireNonNull(nodeName, "nodeName");
        Objects.requireNonNull(ids, "ids");
        if (dataTerm < 0) {
            throw new IllegalArgumentException("dataTerm must not be negative: " + dataTerm);
        }
        if (dirtyBits < 0) {
            throw new IllegalArgumentException("dirtyBits must not be negative: " + dirtyBits);
        }
    }

    /** A Secondary with no changes and no {@code --discard-my-data}. */
    public static SyncSide of(int nodeId, String nodeName, GenerationIds ids) {
        return new SyncSide(nodeId, nodeName, ids, false, 0, false, 0);
    }

    /** Without a data term (a cluster without a store). */
    public SyncSide(int nodeId, String nodeName, GenerationIds ids, boolean primary, long dirtyBits,
                    boolean discardMyData) {
        this(nodeId, nodeName, ids, primary, dirtyBits, discardMyData, 0);
    }

    public SyncSide withPrimary(boolean isPrimary) {
        return new SyncSide(nodeId, nodeName, ids, isPrimary, dirtyBits, discardMyData, dataTerm);
    }

    public SyncSide withDirtyBits(long bits) {
        return new SyncSide(nodeId, nodeName, ids, primary, bits, discardMyData, dataTerm);
    }

    public SyncSide withDiscardMyData(boolean discard) {
        return new SyncSide(nodeId, nodeName, ids, primary, dirtyBits, discard, dataTerm);
    }

    public SyncSide withDataTerm(long term) {
        return new SyncSide(nodeId, nodeName, ids, primary, dirtyBits, discardMyData, term);
    }
}
