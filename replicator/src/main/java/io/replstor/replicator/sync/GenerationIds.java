package io.replstor.replicator.sync;

import java.util.List;
import java.util.Locale;

/**
 * One node's generation identifiers as seen in the connect handshake with one peer: what the sync
 * decision needs from the metadata, and nothing else.
 *
 * <ul>
 *   <li>{@code current}: the current UUID; a new one is made on the first write after losing a
 *       peer and on {@code primary --force}.</li>
 *   <li>{@code bitmap}: the bitmap UUID of the slot for <em>this</em> peer: the generation at which
 *       the two were last in sync, from which the bitmap for that peer counts changes. 0 = no bitmap
 *       (in sync at the last disconnect).</li>
 *   <li>{@code history}: older current and bitmap UUIDs, newest first; 0 entries are empty slots.</li>
 *   <li>{@code consistent}: the local disk is Consistent/UpToDate/Outdated, not Inconsistent (a sync
 *       target that did not finish, or fresh metadata).</li>
 *   <li>{@code crashedPrimary}: the node was Primary when it went down uncleanly; its activity log's
 *       hot extents have been set in its bitmap.</li>
 * </ul>
 *
 * The lowest bit of a UUID records the role when it was made ({@link #UUID_PRIMARY}); every
 * comparison masks it. A current UUID of 0 or {@link #UUID_JUST_CREATED} means metadata that was
 * created and never used.
 */
public record GenerationIds(long current, long bitmap, List<Long> history, boolean consistent,
                            boolean crashedPrimary) {

    /** Lowest UUID bit: the node was Primary when the UUID was made. Masked in every comparison. */
    public static final long UUID_PRIMARY = 1L;
    /** The current UUID of metadata that was created and never used. */
    public static final long UUID_JUST_CREATED = 4L;

    public GenerationIds {
        history = List.copyOf(history);
    }

    /** Fresh metadata, as {@code create-md} leaves it: just created, Inconsistent. */
    public static GenerationIds justCreated() {
        return new GenerationIds(UUID_JUST_CREATED, 0, List.of(), false, false);
    }

    /** The UUID without its role bit. */
    public static long masked(long uuid) {
        return uuid & ~UUID_PRIMARY;
    }

    /** True if the current UUID says "created, never used". */
    public boolean isJustCreated() {
        long c = masked(current);
        return c == 0 || c == UUID_JUST_CREATED;
    }

    /**
     * True if {@code uuid} names a generation: neither 0 (an empty slot) nor {@link #UUID_JUST_CREATED},
     * which {@code primary --force} on fresh metadata rotates into the bitmap slot and which every
     * fresh node shares, so it proves no common ancestry.
     */
    public static boolean isGeneration(long uuid) {
        long m = masked(uuid);
        return m != 0 && m != UUID_JUST_CREATED;
    }

    /** True if {@code uuid} (masked) is a generation among the history entries. */
    boolean historyContains(long uuid) {
        long m = masked(uuid);
        if (!isGeneration(m)) {
            return false;
        }
        for (long h : history) {
            if (masked(h) == m) {
                return true;
            }
        }
        return false;
    }

    /** Formats a UUID as DRBD prints it: 16 upper-case hex digits. */
    public static String format(long uuid) {
        return String.format(Locale.ROOT, "%016X", uuid);
    }
}
