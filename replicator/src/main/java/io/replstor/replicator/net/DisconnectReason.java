package io.replstor.replicator.net;

/**
 * Why a node ends an established connection: the u16 reason of a DISCONNECT frame. Codes are stable
 * wire values.
 */
public enum DisconnectReason {
    /** A code this node does not know (sent by a newer peer). */
    UNKNOWN(0),
    /** The node is shutting down ({@code repld} stopping, resource down). */
    SHUTDOWN(1),
    /** An operator asked for it ({@code replctl disconnect}). */
    ADMIN(2),
    /** The peer sent something this node cannot accept. */
    PROTOCOL_ERROR(3),
    /** The peer failed to complete requests in time (timeout, ko-count). */
    TIMEOUT(4),
    /** The generation UUIDs show a split brain; the node goes StandAlone. */
    SPLIT_BRAIN(5),
    /** The generation UUIDs share no ancestry. */
    UNRELATED_DATA(6),
    /**
     * The peer sent data stamped with a term that is no longer current, or it is not a Primary of the
     * current term: it was deposed. It must learn the new term and resync.
     */
    STALE_TERM(7);

    private final int code;

    DisconnectReason(int code) {
        this.code = code;
    }

    public int code() {
        return code;
    }

    /** @return the reason, or {@link #UNKNOWN} for a code this version does not know */
    public static DisconnectReason fromCode(int code) {
        for (DisconnectReason r : values()) {
            if (r.code == code) {
                return r;
            }
        }
        return UNKNOWN;
    }
}
