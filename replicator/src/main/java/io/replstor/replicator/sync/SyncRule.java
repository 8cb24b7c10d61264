package io.replstor.replicator.sync;

/**
 * The step of the generation-UUID comparison that decided a handshake, numbered as DRBD numbers
 * the rules of its UUID comparison in its logs ("by rule 50"), so that an operator can match our
 * log lines with DRBD's documentation and experience. Rules are written from the point of view of
 * the deciding node ("my"); the peer reaches the {@link #mirror() mirrored} rule from the same
 * identifiers.
 */
public enum SyncRule {
    /** Neither side has ever been used: nothing to copy. */
    BOTH_JUST_CREATED(10, "both sides just created"),
    /** My metadata is fresh: full sync from the peer. */
    JUST_CREATED(20, "my side just created"),
    /** The peer's metadata is fresh: full sync to it. */
    PEER_JUST_CREATED(30, "peer just created"),
    /** Same current UUID: in sync, unless a crashed Primary holds writes the other lacks. */
    EQUAL_CURRENT(40, "equal current UUIDs"),
    /** The peer's bitmap for me starts at my current UUID: the peer moved on, I follow using its bitmap. */
    PEER_BITMAP_IS_MY_CURRENT(50, "peer's bitmap UUID is my current UUID"),
    /** My current UUID is in the peer's history, but its bitmap for me is gone: full sync to me. */
    MY_CURRENT_IN_PEER_HISTORY(60, "my current UUID is in the peer's history"),
    /** My bitmap for the peer starts at its current UUID: I moved on, the peer follows using my bitmap. */
    MY_BITMAP_IS_PEER_CURRENT(70, "my bitmap UUID is the peer's current UUID"),
    /** The peer's current UUID is in my history, but my bitmap for it is gone: full sync to the peer. */
    PEER_CURRENT_IN_MY_HISTORY(80, "peer's current UUID is in my history"),
    /** Both moved on from the same generation, each with a bitmap since then: split brain that a bitmap resync can repair. */
    EQUAL_BITMAP(90, "equal bitmap UUIDs"),
    /** Both moved on from a common ancestor, but the bitmaps do not reach back to it: split brain. */
    COMMON_HISTORY(100, "common ancestor in history"),
    /** No identifier in common: the two disks hold different data sets. DRBD logs this under rule 100 too. */
    UNRELATED(100, "no common ancestor");

    private final int number;
    private final String description;

    SyncRule(int number, String description) {
        this.number = number;
        this.description = description;
    }

    /** DRBD's rule number. */
    public int number() {
        return number;
    }

    public String description() {
        return description;
    }

    /** The rule the peer reaches from the same pair of identifiers. */
    public SyncRule mirror() {
        return switch (this) {
            case JUST_CREATED -> PEER_JUST_CREATED;
            case PEER_JUST_CREATED -> JUST_CREATED;
            case PEER_BITMAP_IS_MY_CURRENT -> MY_BITMAP_IS_PEER_CURRENT;
            case MY_BITMAP_IS_PEER_CURRENT -> PEER_BITMAP_IS_MY_CURRENT;
            case MY_CURRENT_IN_PEER_HISTORY -> PEER_CURRENT_IN_MY_HISTORY;
            case PEER_CURRENT_IN_MY_HISTORY -> MY_CURRENT_IN_PEER_HISTORY;
            default -> this;
        };
    }

    /** True for the two rules that detect a split brain. */
    public boolean isSplitBrain() {
        return this == EQUAL_BITMAP || this == COMMON_HISTORY;
    }

    @Override
    public String toString() {
        return "rule " + number + " (" + description + ")";
    }
}
