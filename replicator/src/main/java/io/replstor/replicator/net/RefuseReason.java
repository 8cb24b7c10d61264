package io.replstor.replicator.net;

/**
 * Why a connection handshake failed: the u16 reason of a REFUSE frame, and the reason of a
 * {@link PeerHandshake.Refused} event on either side. Codes are stable wire values.
 */
public enum RefuseReason {
    /** A code this node does not know (sent by a newer peer). */
    UNKNOWN(0),
    /** The two nodes' protocol version ranges do not overlap. */
    VERSION_MISMATCH(1),
    /** The peer claims this node's own node id. */
    NODE_ID_CONFLICT(2),
    /** The peer's node id is not the one configured for this connection. */
    NODE_ID_UNEXPECTED(3),
    /** The peer names a different resource. */
    RESOURCE_MISMATCH(4),
    /** The peer's volume has a different size. */
    SIZE_MISMATCH(5),
    /** The peer is configured with a different replication protocol (A/B/C). */
    PROTOCOL_MISMATCH(6),
    /** A shared secret is configured on one side only. */
    AUTH_CONFIG_MISMATCH(7),
    /** The peer's authentication response is wrong: the shared secrets differ. */
    AUTH_FAILED(8),
    /** The peer sent back this node's own challenge (a reflection attack, or a loop to itself). */
    CHALLENGE_REFLECTED(9),
    /** The handshake did not finish within the configured timeout. */
    TIMEOUT(10),
    /** Malformed or unexpected frames. */
    PROTOCOL_ERROR(11),
    /** The connection closed before the handshake finished (local only, never sent). */
    CONNECTION_CLOSED(12);

    private final int code;

    RefuseReason(int code) {
        this.code = code;
    }

    public int code() {
        return code;
    }

    /** @return the reason, or {@link #UNKNOWN} for a code this version does not know */
    public static RefuseReason fromCode(int code) {
        for (RefuseReason r : values()) {
            if (r.code == code) {
                return r;
            }
        }
        return UNKNOWN;
    }
}
