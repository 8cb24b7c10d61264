package io.replstor.replicator.net;

/**
 * The frame types of the peer protocol, with their stable wire codes and the shape of each frame:
 * how many bytes of fixed fields follow the common header, and what the payload may hold. The
 * layout of each type's fixed fields is in {@link PeerFrame}.
 *
 * <p>Codes are part of the protocol: never renumber or reuse one; add new types with new codes and
 * a new protocol version.
 */
public enum PeerFrameType {
    HELLO(1, PeerFrame.HELLO_FIXED_BYTES, 1, PeerFrame.RESOURCE_NAME_MAX_BYTES, 1),
    AUTH_RESPONSE(2, PeerFrame.AUTH_RESPONSE_FIXED_BYTES, 0, 0, 1),
    AUTH_OK(3, 0, 0, 0, 1),
    REFUSE(4, PeerFrame.REASON_FIXED_BYTES, 0, PeerFrame.MESSAGE_MAX_BYTES, 1),
    UUIDS(5, PeerFrame.UUIDS_FIXED_BYTES, 0, PeerFrame.HISTORY_MAX_UUIDS * Long.BYTES, Long.BYTES),
    STATE(6, PeerFrame.STATE_FIXED_BYTES, 0, 0, 1),
    DATA(7, PeerFrame.DATA_FIXED_BYTES, 0, Integer.MAX_VALUE, 1),
    RECV_ACK(8, PeerFrame.ACK_FIXED_BYTES, 0, 0, 1),
    WRITE_ACK(9, PeerFrame.ACK_FIXED_BYTES, 0, 0, 1),
    NEG_ACK(10, PeerFrame.ACK_FIXED_BYTES, 0, 0, 1),
    BARRIER(11, PeerFrame.BARRIER_FIXED_BYTES, 0, 0, 1),
    BARRIER_ACK(12, PeerFrame.BARRIER_ACK_FIXED_BYTES, 0, 0, 1),
    PING(13, 0, 0, 0, 1),
    PING_ACK(14, 0, 0, 0, 1),
    BITMAP(15, PeerFrame.BITMAP_FIXED_BYTES, 0, Integer.MAX_VALUE, Integer.BYTES),
    RS_REQUEST(16, PeerFrame.RS_REQUEST_FIXED_BYTES, 0, 0, 1),
    RS_DATA(17, PeerFrame.RS_DATA_FIXED_BYTES, 0, Integer.MAX_VALUE, 1),
    DISCONNECT(18, PeerFrame.REASON_FIXED_BYTES, 0, PeerFrame.MESSAGE_MAX_BYTES, 1),
    PEER_ACK(19, PeerFrame.PEER_ACK_FIXED_BYTES, 0, 0, 1);

    private static final PeerFrameType[] BY_CODE = new PeerFrameType[32];

    static {
        for (PeerFrameType t : values()) {
            BY_CODE[t.code] = t;
        }
    }

    private final int code;
    private final int fixedBytes;
    private final int minPayloadBytes;
    private final int maxPayloadBytes;
    private final int payloadUnitBytes;

    /**
     * @param maxPayloadBytes  {@link Integer#MAX_VALUE}: bounded only by the connection's maximum
     * @param payloadUnitBytes the payload is a whole number of these (8: u64 UUIDs, 4: u32 runs)
     */
    PeerFrameType(int code, int fixedBytes, int minPayloadBytes, int maxPayloadBytes, int payloadUnitBytes) {
        this.code = code;
        this.fixedBytes = fixedBytes;
        this.minPayloadBytes = minPayloadBytes;
        this.maxPayloadBytes = maxPayloadBytes;
        this.payloadUnitBytes = payloadUnitBytes;
    }

    /** The u16 in the TYPE field. */
    public int code() {
        return code;
    }

    /** Bytes of type-specific fixed fields between the common header and the payload. */
    public int fixedBytes() {
        return fixedBytes;
    }

    /** Header plus fixed fields: where the payload starts. */
    public int headBytes() {
        return PeerFrame.HEADER_BYTES + fixedBytes;
    }

    public int minPayloadBytes() {
        return minPayloadBytes;
    }

    /** The most payload this type carries; bulk types ({@link #bulk()}) are bounded per connection. */
    public int maxPayloadBytes() {
        return maxPayloadBytes;
    }

    public int payloadUnitBytes() {
        return payloadUnitBytes;
    }

    /** Whether the payload is bulk data bounded by the connection's maximum, not by the type. */
    public boolean bulk() {
        return maxPayloadBytes == Integer.MAX_VALUE;
    }

    /** The flag bits this type may carry; any other bit set is a protocol error. */
    public int allowedFlags() {
        return this == DATA ? PeerFrame.FLAG_PAYLOAD_CHECKSUMMED | PeerFrame.FLAG_FUA
                : PeerFrame.FLAG_PAYLOAD_CHECKSUMMED;
    }

    /** @return the type, or null if {@code code} names none (a newer peer, or garbage) */
    public static PeerFrameType fromCode(int code) {
        return code >= 0 && code < BY_CODE.length ? BY_CODE[code] : null;
    }
}
