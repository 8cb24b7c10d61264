package io.replstor.replicator.meta;

import java.util.EnumSet;
import java.util.Set;

/**
 * Flags of the local volume, persisted as a u32 in the superblock (bit = {@link #bit()}). The disk
 * state (Inconsistent, Outdated, Consistent, UpToDate) is a separate field, and "consistent" is
 * derived from it.
 */
public enum VolumeFlag {
    /** This node is (or was, when it stopped) Primary: set on promotion, cleared on demotion. */
    PRIMARY(0, "was-primary"),
    /** Found {@link #PRIMARY} after an unclean shutdown: this node crashed while Primary. */
    CRASHED_PRIMARY(1, "crashed-primary"),
    /**
     * The metadata was closed cleanly: bitmaps flushed and no write in flight, so the activity log
     * needs no replay. Cleared (persistently) when the metadata is opened for writing.
     */
    AL_CLEAN(2, "al-clean"),
    /**
     * This replica lost a Primary while it held writes of it that a peer acknowledgement had not yet
     * shown on every replica; it marked them out of sync for all its peers. Until the next Primary has
     * resynced them, a handshake between two Secondaries at the same generation keeps those marks
     * instead of clearing them as moot.
     */
    UNCONFIRMED_WRITES(3, "unconfirmed-writes");

    private final int bit;
    private final String label;

    VolumeFlag(int bit, String label) {
        this.bit = bit;
        this.label = label;
    }

    public int bit() {
        return bit;
    }

    /** The name in dumps. */
    public String label() {
        return label;
    }

    static int encode(Set<VolumeFlag> flags) {
        int v = 0;
        for (VolumeFlag f : flags) {
            v |= 1 << f.bit;
        }
        return v;
    }

    /** @throws IllegalArgumentException for bits this build does not know */
    static Set<VolumeFlag> decode(int bits) {
        EnumSet<VolumeFlag> flags = EnumSet.noneOf(VolumeFlag.class);
        int known = 0;
        for (VolumeFlag f : values()) {
            known |= 1 << f.bit;
            if ((bits & (1 << f.bit)) != 0) {
                flags.add(f);
            }
        }
        if ((bits & ~known) != 0) {
            throw new IllegalArgumentException(String.format("unknown volume flag bits 0x%08x", bits & ~known));
        }
        return flags;
    }
}
