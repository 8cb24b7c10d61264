package io.replstor.replicator.meta;

import io.replstor.replicator.DiskState;

import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumSet;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The part of the superblock that changes while a volume runs: disk state, flags, generation UUIDs,
 * peer slots and the last agreed size. Immutable; {@link Metadata#commit} persists a new one.
 *
 * @param diskState one of the four persisted disk states
 * @param peers one per peer slot, in slot order
 * @param lastAgreedSizeBytes the volume size last agreed with the peers
 * @param dataTerm the newest cluster-store term of any write this replica holds: when two replicas
 *                 diverged, the one with the older data term holds only writes that were never
 *                 acknowledged (its Primary was deposed), so it is the one that resyncs
 */
public record PersistentState(DiskState diskState, Set<VolumeFlag> flags, GenerationUuids uuids,
                              List<PeerSlot> peers, long lastAgreedSizeBytes, long dataTerm) {

    public PersistentState {
        if (!diskState.persistable()) {
            throw new IllegalArgumentException("disk state " + diskState.drbdName()
                    + " is not persisted; only Inconsistent, Outdated, Consistent and UpToDate are");
        }
        flags = flags.isEmpty() ? Set.of() : Collections.unmodifiableSet(EnumSet.copyOf(flags));
        peers = List.copyOf(peers);
        if (peers.size() != uuids.slots()) {
            throw new IllegalArgumentException(peers.size() + " peer slots but " + uuids.slots() + " bitmap UUIDs");
        }
        Set<Integer> nodes = new HashSet<>();
        for (PeerSlot p : peers) {
            if (p.assigned() && !nodes.add(p.nodeId())) {
                throw new IllegalArgumentException("node " + p.nodeId() + " has two peer slots");
            }
        }
        if (dataTerm < 0) {
            throw new IllegalArgumentException("data term " + dataTerm + " is negative");
        }
        if (lastAgreedSizeBytes < 0) {
            throw new IllegalArgumentException("last agreed size " + lastAgreedSizeBytes + " is negative");
        }
    }

    /** Whether the data is consistent (anything but Inconsistent). */
    public boolean consistent() {
        return diskState != DiskState.INCONSISTENT;
    }

    public boolean has(VolumeFlag flag) {
        return flags.contains(flag);
    }

    /** The slot of peer {@code nodeId}, or -1. */
    public int slotOf(int nodeId) {
        for (int s = 0; s < peers.size(); s++) {
            if (peers.get(s).nodeId() == nodeId) {
                return s;
            }
        }
        return -1;
    }

    public PersistentState withDiskState(DiskState state) {
        return new PersistentState(state, flags, uuids, peers, lastAgreedSizeBytes, dataTerm);
    }

    public PersistentState with(VolumeFlag flag, boolean on) {
        EnumSet<VolumeFlag> f = flags.isEmpty() ? EnumSet.noneOf(VolumeFlag.class) : EnumSet.copyOf(flags);
        if (on) {
            f.add(flag);
        } else {
            f.remove(flag);
        }
        return new PersistentState(diskState, f, uuids, peers, lastAgreedSizeBytes, dataTerm);
    }

    public PersistentState withUuids(GenerationUuids u) {
        return new PersistentState(diskState, flags, u, peers, lastAgreedSizeBytes, dataTerm);
    }

    public PersistentState withPeer(int slot, PeerSlot peer) {
        List<PeerSlot> p = new ArrayList<>(peers);
        p.set(slot, peer);
        return new PersistentState(diskState, flags, uuids, p, lastAgreedSizeBytes, dataTerm);
    }

    public PersistentState withLastAgreedSizeBytes(long bytes) {
        return new PersistentState(diskState, flags, uuids, peers, bytes, dataTerm);
    }

    /** This replica now holds a write of {@code term} (never lowers the data term). */
    public PersistentState withDataTerm(long term) {
        return term <= dataTerm ? this
                : new PersistentState(diskState, flags, uuids, peers, lastAgreedSizeBytes, term);
    }
}
