package io.replstor.replicator.meta;

import java.util.EnumSet;
import java.util.Set;

/** Flags of one peer slot, persisted as a u32 in the superblock (bit = {@link #bit()}). */
public enum PeerFlag {
    /** Connected when the metadata was last written (DRBD uses it to tell "both reconnect" cases apart). */
    CONNECTED(0, "connected"),
    /** This node outdated the peer (fence-peer said so); the peer must not be promoted with its data. */
    OUTDATED(1, "peer-outdated"),
    /** The peer needs a full sync, whatever the generation UUIDs say (invalidate-remote). */
    FULL_SYNC(2, "full-sync");

    private final int bit;
    private final String label;

    PeerFlag(int bit, String label) {
        this.bit = bit;
        this.label = label;
    }

    public int bit() {
        return bit;
    }

    public String label() {
        return label;
    }

    static int encode(Set<PeerFlag> flags) {
        int v = 0;
        for (PeerFlag f : flags) {
            v |= 1 << f.bit;
        }
        return v;
    }

    /** @throws IllegalArgumentException for bits this build does not know */
    static Set<PeerFlag> decode(int bits) {
        EnumSet<PeerFlag> flags = EnumSet.noneOf(PeerFlag.class);
        int known = 0;
        for (PeerFlag f : values()) {
            known |= 1 << f.bit;
            if ((bits & (1 << f.bit)) != 0) {
                flags.add(f);
            }
        }
        if ((bits & ~known) != 0) {
            throw new IllegalArgumentException(String.format("unknown peer flag bits 0x%08x", bits & ~known));
        }
        return flags;
    }
}
