package io.replstor.replicator.meta;

import java.util.Collections;
import java.util.EnumSet;
import java.util.Set;

/**
 * One peer slot: which peer node it belongs to ({@link #UNASSIGNED} if none yet) and its flags. The
 * slot's bitmap UUID lives in {@link GenerationUuids}, its bitmap in {@link DirtyBitmap}.
 */
public record PeerSlot(int nodeId, Set<PeerFlag> flags) {
    public static final int UNASSIGNED = -1;

    public PeerSlot {
        if (nodeId != UNASSIGNED && (nodeId < 0 || nodeId > MetadataGeometry.MAX_NODE_ID)) {
            throw new IllegalArgumentException("peer node id " + nodeId + " out of range 0.."
                    + MetadataGeometry.MAX_NODE_ID);
        }
        flags = flags.isEmpty() ? Set.of() : Collections.unmodifiableSet(EnumSet.copyOf(flags));
        if (nodeId == UNASSIGNED && !flags.isEmpty()) {
            throw new IllegalArgumentException("an unassigned peer slot cannot carry flags " + flags);
        }
    }

    public static PeerSlot unassigned() {
        return new PeerSlot(UNASSIGNED, Set.of());
    }

    public static PeerSlot of(int nodeId) {
        return new PeerSlot(nodeId, Set.of());
    }

    public boolean assigned() {
        return nodeId != UNASSIGNED;
    }

    public boolean has(PeerFlag flag) {
        return flags.contains(flag);
    }

    public PeerSlot with(PeerFlag flag, boolean on) {
        EnumSet<PeerFlag> f = flags.isEmpty() ? EnumSet.noneOf(PeerFlag.class) : EnumSet.copyOf(flags);
        if (on) {
            f.add(flag);
        } else {
            f.remove(flag);
        }
        return new PeerSlot(nodeId, f);
    }
}
