package io.replstor.replicator.meta;

import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * What {@code create-md} needs besides the devices. Defaults as DRBD's: 4 MiB activity-log extents,
 * 1237 of them, a 32 KiB (8-block) activity-log ring.
 *
 * @param resourceName the resource ("r0"): 1 to {@value Superblock#RESOURCE_NAME_MAX_BYTES} bytes of
 *                     UTF-8, no whitespace or control characters
 * @param nodeId this node's id, 0 to {@value MetadataGeometry#MAX_NODE_ID}
 * @param maxPeers peer slots (one bitmap each), 1 to {@value MetadataGeometry#MAX_PEERS}
 * @param peerNodeIds peers to give slots now, in slot order (others get one when first seen)
 * @param force overwrite valid metadata (create-md --force)
 */
public record CreateOptions(String resourceName, int nodeId, int maxPeers, int alExtents, int alRingBlocks,
                            int alExtentSizeBytes, List<Integer> peerNodeIds, boolean force) {

    public CreateOptions {
        validateResourceName(resourceName);
        if (nodeId < 0 || nodeId > MetadataGeometry.MAX_NODE_ID) {
            throw new IllegalArgumentException("node id " + nodeId + " is out of range 0.."
                    + MetadataGeometry.MAX_NODE_ID);
        }
        if (maxPeers < 1 || maxPeers > MetadataGeometry.MAX_PEERS) {
            throw new IllegalArgumentException("max-peers " + maxPeers + " is out of range 1.."
                    + MetadataGeometry.MAX_PEERS);
        }
        peerNodeIds = List.copyOf(peerNodeIds);
        if (peerNodeIds.size() > maxPeers) {
            throw new IllegalArgumentException(peerNodeIds.size() + " peers " + peerNodeIds
                    + " do not fit in max-peers " + maxPeers);
        }
        Set<Integer> seen = new HashSet<>();
        for (int peer : peerNodeIds) {
            if (peer < 0 || peer > MetadataGeometry.MAX_NODE_ID || peer == nodeId || !seen.add(peer)) {
                throw new IllegalArgumentException("peer node ids " + peerNodeIds + " must be distinct, in 0.."
                        + MetadataGeometry.MAX_NODE_ID + " and differ from this node's id " + nodeId);
            }
        }
        MetadataGeometry.validateActivityLog(alExtents, alRingBlocks, alExtentSizeBytes);
    }

    /** DRBD's defaults, one peer slot, no peers assigned yet, no force. */
    public static CreateOptions of(String resourceName, int nodeId) {
        return new CreateOptions(resourceName, nodeId, 1, MetadataGeometry.DEFAULT_AL_EXTENTS,
                MetadataGeometry.DEFAULT_AL_RING_BLOCKS, MetadataGeometry.DEFAULT_AL_EXTENT_SIZE_BYTES, List.of(),
                false);
    }

    public CreateOptions withMaxPeers(int n) {
        return new CreateOptions(resourceName, nodeId, n, alExtents, alRingBlocks, alExtentSizeBytes, peerNodeIds,
                force);
    }

    public CreateOptions withAlExtents(int n) {
        return new CreateOptions(resourceName, nodeId, maxPeers, n, alRingBlocks, alExtentSizeBytes, peerNodeIds,
                force);
    }

    public CreateOptions withAlRingBlocks(int n) {
        return new CreateOptions(resourceName, nodeId, maxPeers, alExtents, n, alExtentSizeBytes, peerNodeIds,
                force);
    }

    public CreateOptions withAlExtentSizeBytes(int bytes) {
        return new CreateOptions(resourceName, nodeId, maxPeers, alExtents, alRingBlocks, bytes, peerNodeIds, force);
    }

    public CreateOptions withPeerNodeIds(List<Integer> peers) {
        return new CreateOptions(resourceName, nodeId, maxPeers, alExtents, alRingBlocks, alExtentSizeBytes, peers,
                force);
    }

    public CreateOptions withForce(boolean f) {
        return new CreateOptions(resourceName, nodeId, maxPeers, alExtents, alRingBlocks, alExtentSizeBytes,
                peerNodeIds, f);
    }

    static void validateResourceName(String name) {
        if (name == null || name.isEmpty()) {
            throw new IllegalArgumentException("resource name is empty");
        }
        int bytes = name.getBytes(StandardCharsets.UTF_8).length;
        if (bytes > Superblock.RESOURCE_NAME_MAX_BYTES) {
            throw new IllegalArgumentException("resource name '" + name + "' is " + bytes + " bytes of UTF-8; at most "
                    + Superblock.RESOURCE_NAME_MAX_BYTES + " fit in the metadata");
        }
        if (name.codePoints().anyMatch(c -> Character.isWhitespace(c) || Character.isISOControl(c) || c == '/')) {
            throw new IllegalArgumentException("resource name '" + name
                    + "' contains whitespace, a control character or '/'");
        }
    }
}
