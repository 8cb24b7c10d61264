package io.replstor.replicator.sync;

import java.util.Objects;

/**
 * What a node does with a peer after comparing generation identifiers, seen from the deciding node.
 * The peer, deciding from the same identifiers, reaches the {@link #mirrored()} decision; the
 * {@link #reason()} names both nodes and is the same sentence on both, so their logs agree.
 *
 * @param kind       what happens next
 * @param rule       the UUID comparison rule that decided (DRBD's number); for a split brain that
 *                   was then resolved, the rule that detected it
 * @param resolution what turned the comparison's result into {@code kind}, if anything
 * @param reason     one sentence for logs and {@code status}: which identifiers matched, what follows,
 *                   and for an unresolved split brain what the operator can do
 */
public record SyncDecision(Kind kind, SyncRule rule, Resolution resolution, String reason) {

    public enum Kind {
        /** In sync: Established without a resync. */
        NO_SYNC,
        /** I am SyncSource; blocks set in either side's bitmap are copied to the peer. */
        BITMAP_SYNC_SOURCE,
        /** I am SyncTarget; blocks set in either side's bitmap are copied from the peer. */
        BITMAP_SYNC_TARGET,
        /** I am SyncSource for the whole device. */
        FULL_SYNC_SOURCE,
        /** I am SyncTarget for the whole device. */
        FULL_SYNC_TARGET,
        /** Split brain with a common bitmap generation: a policy or --discard-my-data could repair it with a bitmap resync. Disconnect. */
        SPLIT_BRAIN_AUTO_RECOVERABLE,
        /** Split brain without usable bitmaps: only --discard-my-data (then a full sync) repairs it. Disconnect. */
        SPLIT_BRAIN,
        /** No common generation: different data sets. Refuse the connection. */
        UNRELATED_DATA,
        /** A resync is needed but the side that would be its source is Inconsistent itself. Disconnect. */
        NO_CONSISTENT_SOURCE;

        public Kind mirrored() {
            return switch (this) {
                case BITMAP_SYNC_SOURCE -> BITMAP_SYNC_TARGET;
                case BITMAP_SYNC_TARGET -> BITMAP_SYNC_SOURCE;
                case FULL_SYNC_SOURCE -> FULL_SYNC_TARGET;
                case FULL_SYNC_TARGET -> FULL_SYNC_SOURCE;
                default -> this;
            };
        }

        /** True if the connection goes on (with or without a resync). */
        public boolean connects() {
            return this == NO_SYNC || isSync();
        }

        public boolean isSync() {
            return isSource() || isTarget();
        }

        public boolean isSource() {
            return this == BITMAP_SYNC_SOURCE || this == FULL_SYNC_SOURCE;
        }

        public boolean isTarget() {
            return this == BITMAP_SYNC_TARGET || this == FULL_SYNC_TARGET;
        }

        public boolean isFull() {
            return this == FULL_SYNC_SOURCE || this == FULL_SYNC_TARGET;
        }
    }

    /** What changed the comparison's outcome after the rules ran. */
    public enum Resolution {
        /** The comparison's outcome stands. */
        NONE,
        /** Exactly one side is Inconsistent: it becomes SyncTarget whatever the UUIDs say. */
        DISK_STATES,
        /** A split brain resolved by after-sb-0pri (no Primary). */
        AFTER_SB_0PRI,
        /** A split brain resolved by after-sb-1pri (one Primary). */
        AFTER_SB_1PRI,
        /** A split brain resolved by {@code connect --discard-my-data} on one side. */
        DISCARD_MY_DATA,
        /**
         * A split brain resolved by the cluster store's terms: the side whose newest write is of an older
         * term was a deposed Primary (or fed by one), and its writes since were never acknowledged.
         */
        TERMS
    }

    public SyncDecision {
        Objects.requireNonNull(kind, "kind");
        Objects.requireNonNull(rule, "rule");
        Objects.requireNonNull(resolution, "resolution");
        Objects.requireNonNull(reason, "reason");
    }

    /** The same decision seen from the peer. */
    public SyncDecision mirrored() {
        return new SyncDecision(kind.mirrored(), rule.mirror(), resolution, reason);
    }

    /**
     * True if the identifiers showed a split brain, resolved or not: the {@code initial-split-brain}
     * handler runs for every such handshake, the {@code split-brain} handler only when
     * {@link #kind()} is still a split brain.
     */
    public boolean splitBrainDetected() {
        return rule.isSplitBrain();
    }

    @Override
    public String toString() {
        return kind + " by " + rule + (resolution == Resolution.NONE ? "" : ", resolved by " + resolution)
                + ": " + reason;
    }
}
