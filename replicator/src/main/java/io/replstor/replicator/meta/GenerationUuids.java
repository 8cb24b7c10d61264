package io.replstor.replicator.meta;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.List;

/**
 * A node's generation identifiers (DRBD's "GI tuple"): the current UUID, one bitmap UUID per peer
 * slot, and a history of up to {@value #HISTORY_UUIDS} older UUIDs, newest first. Immutable; every
 * operation returns a new value, which {@link Metadata#commit} persists.
 *
 * <p>Meaning: the current UUID names the generation of the data on this disk. The bitmap UUID of a
 * slot is the generation at which this node started recording, in that slot's bitmap, the blocks
 * the peer lacks (0: not recording, in sync as far as this node knows). The history holds
 * generations this node's data descends from.
 *
 * <p>The lowest bit of a UUID is a flag ({@link #UUID_PRIMARY}: created while Primary), so UUIDs
 * are compared with it masked ({@link #same}). {@link #UUID_JUST_CREATED} is the current UUID of
 * fresh metadata: it is never rotated into a bitmap slot or the history, and 0 never is either.
 *
 * <p>The rules follow DRBD 9 (generation identifiers in the DRBD User's Guide, "internals"):
 * <ul>
 * <li>{@link #withNewCurrent}: on the first write after losing a peer, on promotion without all
 * peers, and on {@code primary --force}. The old current becomes the bitmap UUID of every given
 * disconnected slot that is not already recording; if no slot takes it, it goes to the history.
 * <li>{@link #withNewCurrentClearingBitmaps}: {@code new-current-uuid --clear-bitmap}, which skips the
 * initial sync of new, empty volumes: the old current goes to the history and the given slots stop
 * recording.
 * <li>{@link #withBitmapUuidCleared}: a resync with that slot finished (this node was the source, or
 * the peer caught up): the slot's bitmap UUID moves to the history.
 * <li>{@link #adoptedFromSyncSource}: at the end of a resync the target takes the source's current
 * UUID and history and clears the source's slot.
 * </ul>
 */
public final class GenerationUuids {
    public static final int HISTORY_UUIDS = 32;
    public static final long UUID_PRIMARY = 1L;
    public static final long UUID_JUST_CREATED = 4L;

    private final long current;
    private final long[] bitmapUuids;
    private final long[] history;

    /**
     * @param bitmapUuids one per peer slot
     * @param history newest first; zeroes are dropped, at most {@value #HISTORY_UUIDS}
     */
    public GenerationUuids(long current, long[] bitmapUuids, long[] history) {
        if (bitmapUuids.length < 1 || bitmapUuids.length > MetadataGeometry.MAX_PEERS) {
            throw new IllegalArgumentException(bitmapUuids.length + " bitmap UUIDs; expected 1.."
                    + MetadataGeometry.MAX_PEERS + " (one per peer slot)");
        }
        long[] h = Arrays.stream(history).filter(u -> u != 0).toArray();
        if (h.length > HISTORY_UUIDS) {
            throw new IllegalArgumentException(h.length + " history UUIDs; at most " + HISTORY_UUIDS);
        }
        this.current = current;
        this.bitmapUuids = bitmapUuids.clone();
        this.history = h;
    }

    /** Fresh metadata: current {@link #UUID_JUST_CREATED}, nothing recorded, no history. */
    public static GenerationUuids justCreated(int slots) {
        return new GenerationUuids(UUID_JUST_CREATED, new long[slots], new long[0]);
    }

    /** Equal apart from the {@link #UUID_PRIMARY} flag bit. */
    public static boolean same(long a, long b) {
        return (a & ~UUID_PRIMARY) == (b & ~UUID_PRIMARY);
    }

    /** Whether {@code uuid} names a real generation (not 0, not just-created). */
    public static boolean meaningful(long uuid) {
        long u = uuid & ~UUID_PRIMARY;
        return u != 0 && u != UUID_JUST_CREATED;
    }

    public long current() {
        return current;
    }

    public int slots() {
        return bitmapUuids.length;
    }

    public long bitmapUuid(int slot) {
        return bitmapUuids[slot];
    }

    /** Newest first. */
    public List<Long> history() {
        return Arrays.stream(history).boxed().toList();
    }

    public boolean historyContains(long uuid) {
        for (long h : history) {
            if (same(h, uuid)) {
                return true;
            }
        }
        return false;
    }

    /** Whether the current UUID carries the {@link #UUID_PRIMARY} flag. */
    public boolean primaryFlag() {
        return (current & UUID_PRIMARY) != 0;
    }

    /**
     * A new current UUID.
     *
     * @param fresh a new random UUID ({@link UuidGenerator}); its lowest bit is replaced by {@code primary}
     * @param disconnectedSlots slots of assigned peers that are not connected: they start recording
     *                          at the old current UUID unless they already record
     */
    public GenerationUuids withNewCurrent(long fresh, boolean primary, BitSet disconnectedSlots) {
        requireFresh(fresh);
        long old = current;
        long[] bitmaps = bitmapUuids.clone();
        boolean rotated = false;
        if (meaningful(old)) {
            for (int s = disconnectedSlots.nextSetBit(0); s >= 0; s = disconnectedSlots.nextSetBit(s + 1)) {
                checkSlot(s);
                if (bitmaps[s] == 0) {
                    bitmaps[s] = old;
                    rotated = true;
                }
            }
        }
        long[] h = rotated ? history : pushed(history, old);
        return new GenerationUuids(withFlag(fresh, primary), bitmaps, h);
    }

    /** {@code new-current-uuid --clear-bitmap}: the given slots stop recording; the old current goes to history. */
    public GenerationUuids withNewCurrentClearingBitmaps(long fresh, boolean primary, BitSet clearedSlots) {
        requireFresh(fresh);
        long[] bitmaps = bitmapUuids.clone();
        for (int s = clearedSlots.nextSetBit(0); s >= 0; s = clearedSlots.nextSetBit(s + 1)) {
            checkSlot(s);
            bitmaps[s] = 0;
        }
        return new GenerationUuids(withFlag(fresh, primary), bitmaps, pushed(history, current));
    }

    /** Resync with {@code slot} finished: its bitmap UUID goes to the history and the slot stops recording. */
    public GenerationUuids withBitmapUuidCleared(int slot) {
        checkSlot(slot);
        if (bitmapUuids[slot] == 0) {
            return this;
        }
        long[] bitmaps = bitmapUuids.clone();
        bitmaps[slot] = 0;
        return new GenerationUuids(current, bitmaps, pushed(history, bitmapUuids[slot]));
    }

    /** Sets a slot's bitmap UUID (e.g. copied from a peer during a handshake). */
    public GenerationUuids withBitmapUuid(int slot, long uuid) {
        checkSlot(slot);
        long[] bitmaps = bitmapUuids.clone();
        bitmaps[slot] = uuid;
        return new GenerationUuids(current, bitmaps, history);
    }

    /**
     * End of a resync as target: this node's data now is the source's generation. Takes the source's
     * current UUID (with this node's role in the flag bit) and history, after this node's own old
     * current UUID: the new data descends from it too, and a third node still at that generation must
     * find it in common with this one (without it the two would look unrelated: the source may have
     * kept that UUID in a bitmap slot rather than in its history). The source's slot stops recording;
     * other slots keep theirs.
     */
    public GenerationUuids adoptedFromSyncSource(long sourceCurrent, List<Long> sourceHistory, int sourceSlot,
                                                 boolean primary) {
        checkSlot(sourceSlot);
        long[] bitmaps = bitmapUuids.clone();
        bitmaps[sourceSlot] = 0;
        long[] h = sourceHistory.stream().mapToLong(Long::longValue).filter(u -> u != 0)
                .limit(HISTORY_UUIDS).toArray();
        if (meaningful(current) && !same(current, sourceCurrent)
                && Arrays.stream(h).noneMatch(u -> same(u, current))) {
            h = pushed(h, current & ~UUID_PRIMARY);
        }
        return new GenerationUuids(withFlag(sourceCurrent, primary), bitmaps, h);
    }

    /**
     * A connected peer in sync with this node started a new generation ({@code sourceCurrent}, with its
     * history): this node follows it. The peer's slot stops recording (in sync with it); the slots in
     * {@code behind} (peers the new generation does not reach) start recording from this node's old
     * current UUID, as they do on the peer; the other slots keep theirs.
     */
    public GenerationUuids followedNewCurrent(long sourceCurrent, List<Long> sourceHistory, int sourceSlot,
                                              BitSet behind, boolean primary) {
        checkSlot(sourceSlot);
        long[] bitmaps = bitmapUuids.clone();
        bitmaps[sourceSlot] = 0;
        for (int s = behind.nextSetBit(0); s >= 0; s = behind.nextSetBit(s + 1)) {
            checkSlot(s);
            if (bitmaps[s] == 0 && meaningful(current)) {
                bitmaps[s] = current;
            }
        }
        long[] h = sourceHistory.stream().mapToLong(Long::longValue).filter(u -> u != 0)
                .limit(HISTORY_UUIDS).toArray();
        return new GenerationUuids(withFlag(sourceCurrent, primary), bitmaps, h);
    }

    /** Sets or clears the {@link #UUID_PRIMARY} bit of the current UUID (on promote and demote). */
    public GenerationUuids withPrimaryFlag(boolean primary) {
        return new GenerationUuids(withFlag(current, primary), bitmapUuids, history);
    }

    private static long withFlag(long uuid, boolean primary) {
        return (uuid & ~UUID_PRIMARY) | (primary ? UUID_PRIMARY : 0);
    }

    private static void requireFresh(long fresh) {
        if (!meaningful(fresh)) {
            throw new IllegalArgumentException(String.format("0x%016X cannot be a new current UUID", fresh));
        }
    }

    private void checkSlot(int slot) {
        if (slot < 0 || slot >= bitmapUuids.length) {
            throw new IllegalArgumentException("peer slot " + slot + " out of range 0.." + (bitmapUuids.length - 1));
        }
    }

    /** {@code uuid} in front, duplicates of it removed, cut to {@value #HISTORY_UUIDS}. */
    private static long[] pushed(long[] history, long uuid) {
        if (!meaningful(uuid)) {
            return history;
        }
        List<Long> h = new ArrayList<>(history.length + 1);
        h.add(uuid);
        for (long u : history) {
            if (!same(u, uuid) && h.size() < HISTORY_UUIDS) {
                h.add(u);
            }
        }
        return h.stream().mapToLong(Long::longValue).toArray();
    }

    /** DRBD's notation: 16 upper-case hex digits. */
    public static String format(long uuid) {
        return String.format("%016X", uuid);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof GenerationUuids g && current == g.current && Arrays.equals(bitmapUuids, g.bitmapUuids)
                && Arrays.equals(history, g.history);
    }

    @Override
    public int hashCode() {
        return Long.hashCode(current) * 31 * 31 + Arrays.hashCode(bitmapUuids) * 31 + Arrays.hashCode(history);
    }

    /** current:bitmap0:bitmap1...:history0:history1..., like drbdadm show-gi. */
    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder(format(current));
        for (long b : bitmapUuids) {
            sb.append(':').append(format(b));
        }
        for (long h : history) {
            sb.append(':').append(format(h));
        }
        return sb.toString();
    }
}
