package io.replstor.replicator.net;

import io.netty.buffer.ByteBuf;
import io.replstor.replicator.DiskState;
import io.replstor.replicator.Role;
import io.replstor.replicator.config.ReplicationProtocol;
import io.replstor.replicator.sync.GenerationIds;

import java.nio.charset.StandardCharsets;

/**
 * One frame of the peer protocol, and a reusable flyweight that reads a frame in place.
 *
 * <h2>Wire format</h2>
 * Every integer is big-endian (network order); {@code u8/u16/u32/u64} are unsigned on the wire
 * (u64 values travel as Java {@code long}s). Offsets are from the first byte of the frame.
 * <pre>
 * stream      = *frame
 * frame       = header fixed payload
 * header      = magic:u32 type:u16 flags:u16 length:u32 checksum:u32          ; 16 bytes
 *   magic     = 0x52504C31 ("RPL1")
 *   type      = a {@link PeerFrameType} code
 *   flags     = bit 0 PAYLOAD_CHECKSUMMED, bit 1 FUA (DATA only); other bits must be 0
 *   length    = bytes of payload (the fixed fields are not counted: their size follows from type)
 *   checksum  = CRC32C (Castagnoli) over header ++ fixed, with the checksum field read as 0,
 *               followed by the payload when PAYLOAD_CHECKSUMMED is set
 * fixed       = the type's fixed fields (below), possibly none
 * payload     = length bytes
 *
 * type           code fixed fields (offset: field)                                   payload
 * HELLO           1   16 versionMin:u16, 18 versionMax:u16, 20 nodeId:u32,              resource name,
 *                     24 volumeSizeBytes:u64, 32 protocol:u8 ('A' 'B' 'C'),             UTF-8, 1..255
 *                     33 authAlgorithm:u8 (0 none, 1 HMAC-SHA256), 34 reserved:u16,
 *                     36 challenge:64 bytes                                   (84 bytes)
 * AUTH_RESPONSE   2   16 hmac:32 bytes = HMAC-SHA256(secret, peer's challenge ++ my nodeId:u32)    -
 * AUTH_OK         3   -                                                                          -
 * REFUSE          4   16 reason:u16 ({@link RefuseReason}), 18 reserved:u16                message, UTF-8, 0..1024
 * UUIDS           5   16 current:u64, 24 bitmapUuid:u64 (the slot for the receiver),    history: u64 * 0..32,
 *                     32 uuidFlags:u64 (bit 0 consistent, bit 1 crashed primary, ...),  newest first
 *                     40 dataTerm:u64 (the newest term of any write the sender's disk holds),
 *                     48 followers:u32 (ADOPT: node-id bits of the nodes this new generation reaches),
 *                     52 reserved:u32
 * STATE           6   16 role:u8, 17 diskState:u8, 18 stateFlags:u16, 20 reserved:u32,           -
 *                     24 term:u64 (the newest term the sender's role authority applied)
 * DATA            7   16 term:u64, 24 barrier:u64, 32 sequence:u64, 40 offset:u64 (bytes), the data written
 *                     48 targets:u32 (node-id bits of every node the write goes to), 52 reserved:u32
 * RECV_ACK        8   16 barrier:u64, 24 sequence:u64                                            -
 * WRITE_ACK       9   (as RECV_ACK)                                                              -
 * NEG_ACK        10   (as RECV_ACK)                                                              -
 * BARRIER        11   16 term:u64, 24 barrier:u64                                                -
 * BARRIER_ACK    12   16 barrier:u64, 24 count:u32 (writes before the barrier), 28 reserved:u32  -
 * PING           13   -                                                                          -
 * PING_ACK       14   -                                                                          -
 * BITMAP         15   16 bitOffset:u64 (index of the first 4 KiB block covered)          runs: u32 * n,
 *                                                                                        alternately clear
 *                                                                                        and set, starting
 *                                                                                        with clear (may be 0)
 * RS_REQUEST     16   16 offset:u64 (bytes), 24 length:u32 (bytes), 28 reserved:u32               -
 * RS_DATA        17   16 term:u64, 24 offset:u64 (bytes)                                 the data
 * DISCONNECT     18   16 reason:u16 ({@link DisconnectReason}), 18 reserved:u16          message, UTF-8, 0..1024
 * PEER_ACK       19   16 barrier:u64, 24 holders:u32 (node-id bits of the nodes that hold     -
 *                     every write before the barrier), 28 reserved:u32
 * </pre>
 * Reserved fields are sent as 0 and ignored on receipt.
 *
 * <h2>Terms and barriers</h2>
 * {@code term} is the fencing token of the cluster store (DESIGN §5): a Primary stamps every frame
 * that changes data (DATA, BARRIER) with the term of its promotion, a sync source stamps RS_DATA with
 * its current term, and a replica whose role authority enforces terms refuses data of an older term
 * or from a node that is not a Primary of its term. {@code barrier} numbers the write barriers of a
 * Primary's stream (DRBD's "epoch"): writes between two barriers may be reordered, a barrier is
 * acknowledged once everything before it is durable. The payload of DATA, RS_DATA and BITMAP is
 * bounded by the connection's maximum ({@link PeerFrameDecoder}, 1 MiB by default); the others by
 * their type.
 *
 * <h2>Peer acknowledgements</h2>
 * A Primary sends PEER_ACK on the data channel once every peer it sent barrier {@code barrier} to
 * has acknowledged it or is gone: {@code holders} names the nodes (the Primary included) that hold
 * every write before that barrier on stable storage. A Secondary keeps the ranges of the writes it
 * received until a PEER_ACK covers them; it then marks them out of sync for the targets that are not
 * holders, and forgets them. If it loses the Primary first, it marks every range it still keeps for
 * all its peers: those writes may have reached some replicas and not others, and were never
 * acknowledged, so the next Primary resyncs them (DRBD 9's peer acks).
 *
 * <h2>Checksums</h2>
 * Every frame's header and fixed fields are covered by CRC32C: TCP's 16-bit checksum lets corrupted
 * segments through at scale, and a corrupted length or offset would desynchronise the stream or
 * write data to the wrong place. Control frames always checksum their payload too (it is small).
 * For DATA and RS_DATA payload coverage is a per-connection choice of the sender (on by default,
 * see {@link PeerFrameEncoder}); the receiver verifies whatever the flag says. A mismatch is a
 * {@link PeerProtocolException}: the connection drops and the dirty bitmap turns the lost write
 * into a resync, as DRBD does with its data-integrity-alg. CRC32C runs on the CPU's CRC instruction
 * through the JDK intrinsic.
 *
 * <h2>The flyweight</h2>
 * {@link #wrap} points this object at a frame that starts at the buffer's reader index (as
 * {@link PeerFrameDecoder} emits them); the accessors then read fields in place, without copies or
 * allocation. The flyweight does not own the buffer, and trusts that the decoder has validated it.
 */
public final class PeerFrame {
    /** "RPL1". */
    public static final int MAGIC = 0x52504C31;
    /** The protocol versions this build speaks. */
    public static final int PROTOCOL_VERSION_MIN = 3;
    public static final int PROTOCOL_VERSION_MAX = 3;

    public static final int MAGIC_OFFSET = 0;
    public static final int TYPE_OFFSET = 4;
    public static final int FLAGS_OFFSET = 6;
    public static final int LENGTH_OFFSET = 8;
    public static final int CHECKSUM_OFFSET = 12;
    public static final int HEADER_BYTES = 16;

    public static final int FLAG_PAYLOAD_CHECKSUMMED = 0x0001;
    public static final int FLAG_FUA = 0x0002;

    // HELLO
    public static final int HELLO_VERSION_MIN_OFFSET = 16;
    public static final int HELLO_VERSION_MAX_OFFSET = 18;
    public static final int HELLO_NODE_ID_OFFSET = 20;
    public static final int HELLO_VOLUME_SIZE_OFFSET = 24;
    public static final int HELLO_PROTOCOL_OFFSET = 32;
    public static final int HELLO_AUTH_ALGORITHM_OFFSET = 33;
    public static final int HELLO_RESERVED_OFFSET = 34;
    public static final int HELLO_CHALLENGE_OFFSET = 36;
    public static final int CHALLENGE_BYTES = 64;
    public static final int HELLO_FIXED_BYTES = HELLO_CHALLENGE_OFFSET + CHALLENGE_BYTES - HEADER_BYTES;
    public static final int RESOURCE_NAME_MAX_BYTES = 255;
    public static final int AUTH_NONE = 0;
    public static final int AUTH_HMAC_SHA256 = 1;

    // AUTH_RESPONSE
    public static final int AUTH_RESPONSE_HMAC_OFFSET = 16;
    public static final int HMAC_BYTES = 32;
    public static final int AUTH_RESPONSE_FIXED_BYTES = HMAC_BYTES;

    // REFUSE, DISCONNECT
    public static final int REASON_OFFSET = 16;
    public static final int REASON_RESERVED_OFFSET = 18;
    public static final int REASON_FIXED_BYTES = 4;
    public static final int MESSAGE_MAX_BYTES = 1024;

    // UUIDS
    public static final int UUIDS_CURRENT_OFFSET = 16;
    public static final int UUIDS_BITMAP_OFFSET = 24;
    public static final int UUIDS_FLAGS_OFFSET = 32;
    public static final int UUIDS_DATA_TERM_OFFSET = 40;
    public static final int UUIDS_FOLLOWERS_OFFSET = 48;
    public static final int UUIDS_RESERVED_OFFSET = 52;
    public static final int UUIDS_FIXED_BYTES = 40;
    public static final int HISTORY_MAX_UUIDS = 32;
    public static final long UUID_FLAG_CONSISTENT = 1L;
    public static final long UUID_FLAG_CRASHED_PRIMARY = 2L;
    /** The sender was told {@code connect --discard-my-data}: it yields a split brain. */
    public static final long UUID_FLAG_DISCARD_MY_DATA = 4L;
    /** Sent while connected: the sender's new current UUID; an in-sync receiver adopts it. */
    public static final long UUID_FLAG_ADOPT = 8L;
    /** With {@link #UUID_FLAG_ADOPT}: new-current-uuid --clear-bitmap, the initial sync is skipped. */
    public static final long UUID_FLAG_CLEAR_BITMAP = 16L;
    /**
     * Sent while connected by a node whose resync (from a third node) just finished: it now holds this
     * generation's data, so what the receiver marked out of sync for it before that resync is moot.
     */
    public static final long UUID_FLAG_RESYNCED = 32L;
    /**
     * The sender holds writes of a lost Primary that may not be on every replica ({@link
     * io.replstor.replicator.meta.VolumeFlag#UNCONFIRMED_WRITES}): what it marked for the receiver must
     * be resynced, never cleared as moot.
     */
    public static final long UUID_FLAG_UNCONFIRMED = 64L;
    /** HELLO's channel field: the data channel (replicated writes, resync, state). */
    public static final int CHANNEL_DATA = 0;
    /** HELLO's channel field: the meta channel (acks and pings, never behind bulk data). */
    public static final int CHANNEL_META = 1;
    /** STATE flag: the sender's operator paused the resync (pause-sync). */
    public static final int STATE_FLAG_SYNC_PAUSED = 1;
    /** STATE flag: the sender asks the receiver to discard its data and resync fully (invalidate-remote). */
    public static final int STATE_FLAG_INVALIDATE_REQUEST = 2;
    /** STATE flag: the sender holds writes of a lost Primary that may not be on every replica. */
    public static final int STATE_FLAG_UNCONFIRMED = 4;

    // STATE
    public static final int STATE_ROLE_OFFSET = 16;
    public static final int STATE_DISK_OFFSET = 17;
    public static final int STATE_FLAGS_OFFSET = 18;
    public static final int STATE_RESERVED_OFFSET = 20;
    public static final int STATE_TERM_OFFSET = 24;
    public static final int STATE_FIXED_BYTES = 16;

    // DATA: term, barrier, sequence, offset
    public static final int DATA_TERM_OFFSET = 16;
    public static final int DATA_BARRIER_OFFSET = 24;
    public static final int DATA_SEQUENCE_OFFSET = 32;
    public static final int DATA_OFFSET_OFFSET = 40;
    public static final int DATA_TARGETS_OFFSET = 48;
    public static final int DATA_RESERVED_OFFSET = 52;
    public static final int DATA_FIXED_BYTES = 40;
    // the acks and BARRIER_ACK: barrier, then sequence (acks) or count (BARRIER_ACK)
    public static final int ACK_BARRIER_OFFSET = 16;
    public static final int ACK_SEQUENCE_OFFSET = 24;
    public static final int ACK_FIXED_BYTES = 16;
    // BARRIER: term, barrier
    public static final int BARRIER_TERM_OFFSET = 16;
    public static final int BARRIER_BARRIER_OFFSET = 24;
    public static final int BARRIER_FIXED_BYTES = 16;
    public static final int BARRIER_ACK_COUNT_OFFSET = 24;
    public static final int BARRIER_ACK_RESERVED_OFFSET = 28;
    public static final int BARRIER_ACK_FIXED_BYTES = 16;
    // PEER_ACK: barrier, holders
    public static final int PEER_ACK_BARRIER_OFFSET = 16;
    public static final int PEER_ACK_HOLDERS_OFFSET = 24;
    public static final int PEER_ACK_RESERVED_OFFSET = 28;
    public static final int PEER_ACK_FIXED_BYTES = 16;

    // BITMAP
    public static final int BITMAP_BIT_OFFSET_OFFSET = 16;
    public static final int BITMAP_FIXED_BYTES = 8;
    public static final int BITMAP_BLOCK_BYTES = 4096;

    // RS_REQUEST, RS_DATA
    public static final int RS_OFFSET_OFFSET = 16;
    public static final int RS_REQUEST_LENGTH_OFFSET = 24;
    public static final int RS_REQUEST_RESERVED_OFFSET = 28;
    public static final int RS_REQUEST_FIXED_BYTES = 16;
    public static final int RS_DATA_TERM_OFFSET = 16;
    public static final int RS_DATA_OFFSET_OFFSET = 24;
    public static final int RS_DATA_FIXED_BYTES = 16;

    /** The largest header + fixed fields of any type (HELLO's). */
    public static final int MAX_HEAD_BYTES = HEADER_BYTES + HELLO_FIXED_BYTES;

    private ByteBuf buf;
    private int base;
    private PeerFrameType type;

    /** Points this flyweight at the frame starting at {@code frame}'s reader index. */
    public PeerFrame wrap(ByteBuf frame) {
        this.buf = frame;
        this.base = frame.readerIndex();
        this.type = PeerFrameType.fromCode(frame.getUnsignedShort(base + TYPE_OFFSET));
        if (type == null) {
            throw new IllegalArgumentException("not a validated frame: unknown type "
                    + frame.getUnsignedShort(base + TYPE_OFFSET));
        }
        return this;
    }

    /** The buffer this flyweight reads (not owned by it). */
    public ByteBuf buffer() {
        return buf;
    }

    public PeerFrameType type() {
        return type;
    }

    public int flags() {
        return buf.getUnsignedShort(base + FLAGS_OFFSET);
    }

    public boolean fua() {
        return (flags() & FLAG_FUA) != 0;
    }

    public boolean payloadChecksummed() {
        return (flags() & FLAG_PAYLOAD_CHECKSUMMED) != 0;
    }

    public int payloadLength() {
        return buf.getInt(base + LENGTH_OFFSET);
    }

    /** Header, fixed fields and payload. */
    public int frameLength() {
        return type.headBytes() + payloadLength();
    }

    public int checksum() {
        return buf.getInt(base + CHECKSUM_OFFSET);
    }

    /** The buffer index where the payload starts. */
    public int payloadIndex() {
        return base + type.headBytes();
    }

    /** The payload as a slice of the frame: not retained, valid while the frame is (allocates a view). */
    public ByteBuf payload() {
        return buf.slice(payloadIndex(), payloadLength());
    }

    /**
     * Turns the wrapped frame buffer into its payload, without allocating: moves its reader index to
     * the payload (the frame holds exactly one frame, so the payload runs to its end). The buffer's
     * owner can then hand it on, e.g. to the disk write; this flyweight must not be used on it again
     * before the next {@link #wrap}.
     */
    public ByteBuf takePayload() {
        buf.readerIndex(payloadIndex());
        return buf;
    }

    // --- HELLO

    public int versionMin() {
        expect(PeerFrameType.HELLO);
        return buf.getUnsignedShort(base + HELLO_VERSION_MIN_OFFSET);
    }

    public int versionMax() {
        expect(PeerFrameType.HELLO);
        return buf.getUnsignedShort(base + HELLO_VERSION_MAX_OFFSET);
    }

    public int nodeId() {
        expect(PeerFrameType.HELLO);
        return buf.getInt(base + HELLO_NODE_ID_OFFSET);
    }

    public long volumeSizeBytes() {
        expect(PeerFrameType.HELLO);
        return buf.getLong(base + HELLO_VOLUME_SIZE_OFFSET);
    }

    /** The protocol byte as sent; see {@link #protocol(int)}. */
    public int protocolCode() {
        expect(PeerFrameType.HELLO);
        return buf.getUnsignedByte(base + HELLO_PROTOCOL_OFFSET);
    }

    public int authAlgorithm() {
        expect(PeerFrameType.HELLO);
        return buf.getUnsignedByte(base + HELLO_AUTH_ALGORITHM_OFFSET);
    }

    /** Copies the 64-byte challenge into {@code dst}. */
    public void challenge(byte[] dst) {
        expect(PeerFrameType.HELLO);
        buf.getBytes(base + HELLO_CHALLENGE_OFFSET, dst, 0, CHALLENGE_BYTES);
    }

    public String resourceName() {
        expect(PeerFrameType.HELLO);
        return payloadString();
    }

    // --- AUTH_RESPONSE

    /** Copies the 32-byte HMAC into {@code dst}. */
    public void hmac(byte[] dst) {
        expect(PeerFrameType.AUTH_RESPONSE);
        buf.getBytes(base + AUTH_RESPONSE_HMAC_OFFSET, dst, 0, HMAC_BYTES);
    }

    // --- REFUSE, DISCONNECT

    public int reasonCode() {
        expect(PeerFrameType.REFUSE, PeerFrameType.DISCONNECT);
        return buf.getUnsignedShort(base + REASON_OFFSET);
    }

    public RefuseReason refuseReason() {
        expect(PeerFrameType.REFUSE);
        return RefuseReason.fromCode(reasonCode());
    }

    public DisconnectReason disconnectReason() {
        expect(PeerFrameType.DISCONNECT);
        return DisconnectReason.fromCode(reasonCode());
    }

    public String message() {
        expect(PeerFrameType.REFUSE, PeerFrameType.DISCONNECT);
        return payloadString();
    }

    // --- UUIDS

    public long currentUuid() {
        expect(PeerFrameType.UUIDS);
        return buf.getLong(base + UUIDS_CURRENT_OFFSET);
    }

    public long bitmapUuid() {
        expect(PeerFrameType.UUIDS);
        return buf.getLong(base + UUIDS_BITMAP_OFFSET);
    }

    public long uuidFlags() {
        expect(PeerFrameType.UUIDS);
        return buf.getLong(base + UUIDS_FLAGS_OFFSET);
    }

    public int historyCount() {
        expect(PeerFrameType.UUIDS);
        return payloadLength() / Long.BYTES;
    }

    public long history(int i) {
        expect(PeerFrameType.UUIDS);
        return buf.getLong(base + type.headBytes() + i * Long.BYTES);
    }

    /** The UUIDS frame as the sync decision takes it (allocates; handshake path only). */
    public GenerationIds generationIds() {
        long[] h = new long[historyCount()];
        for (int i = 0; i < h.length; i++) {
            h[i] = history(i);
        }
        long f = uuidFlags();
        return new GenerationIds(currentUuid(), bitmapUuid(), java.util.Arrays.stream(h).boxed().toList(),
                (f & UUID_FLAG_CONSISTENT) != 0, (f & UUID_FLAG_CRASHED_PRIMARY) != 0);
    }

    /** The newest term of any write the sender's disk holds (0: none, or no cluster store). */
    public long dataTerm() {
        expect(PeerFrameType.UUIDS);
        return buf.getLong(base + UUIDS_DATA_TERM_OFFSET);
    }

    /** ADOPT: the node-id bits of the nodes the sender's new generation reaches (it and its connected peers). */
    public int followers() {
        expect(PeerFrameType.UUIDS);
        return buf.getInt(base + UUIDS_FOLLOWERS_OFFSET);
    }

    /** DATA: the node-id bits of every node the write goes to; a replica marks it out of sync for the others. */
    public int targets() {
        expect(PeerFrameType.DATA);
        return buf.getInt(base + DATA_TARGETS_OFFSET);
    }

    // --- STATE

    public Role role() {
        expect(PeerFrameType.STATE);
        return role(buf.getUnsignedByte(base + STATE_ROLE_OFFSET));
    }

    /** The STATE flags ({@link #STATE_FLAG_SYNC_PAUSED}, ...). */
    public int stateFlags() {
        expect(PeerFrameType.STATE);
        return buf.getUnsignedShort(base + STATE_FLAGS_OFFSET);
    }

    /** HELLO's channel: {@link #CHANNEL_DATA} or {@link #CHANNEL_META}. */
    public int helloChannel() {
        expect(PeerFrameType.HELLO);
        return buf.getUnsignedShort(base + HELLO_RESERVED_OFFSET);
    }

    public DiskState diskState() {
        expect(PeerFrameType.STATE);
        return diskState(buf.getUnsignedByte(base + STATE_DISK_OFFSET));
    }

    // --- DATA, acks, barriers

    /** The term of DATA, BARRIER, RS_DATA (the sender's authority) or STATE (the sender's newest). */
    public long term() {
        return switch (type) {
            case DATA -> buf.getLong(base + DATA_TERM_OFFSET);
            case BARRIER -> buf.getLong(base + BARRIER_TERM_OFFSET);
            case RS_DATA -> buf.getLong(base + RS_DATA_TERM_OFFSET);
            case STATE -> buf.getLong(base + STATE_TERM_OFFSET);
            default -> throw wrongType("term");
        };
    }

    /** The barrier number of DATA (the barrier interval it belongs to), the acks, BARRIER and BARRIER_ACK. */
    public long barrier() {
        return switch (type) {
            case DATA -> buf.getLong(base + DATA_BARRIER_OFFSET);
            case RECV_ACK, WRITE_ACK, NEG_ACK, BARRIER_ACK -> buf.getLong(base + ACK_BARRIER_OFFSET);
            case BARRIER -> buf.getLong(base + BARRIER_BARRIER_OFFSET);
            case PEER_ACK -> buf.getLong(base + PEER_ACK_BARRIER_OFFSET);
            default -> throw wrongType("barrier");
        };
    }

    public long sequence() {
        return switch (type) {
            case DATA -> buf.getLong(base + DATA_SEQUENCE_OFFSET);
            case RECV_ACK, WRITE_ACK, NEG_ACK -> buf.getLong(base + ACK_SEQUENCE_OFFSET);
            default -> throw wrongType("sequence");
        };
    }

    /** The byte offset of DATA, RS_REQUEST or RS_DATA. */
    public long offset() {
        return switch (type) {
            case DATA -> buf.getLong(base + DATA_OFFSET_OFFSET);
            case RS_REQUEST -> buf.getLong(base + RS_OFFSET_OFFSET);
            case RS_DATA -> buf.getLong(base + RS_DATA_OFFSET_OFFSET);
            default -> throw wrongType("offset");
        };
    }

    /** PEER_ACK: node-id bits of the nodes that hold every write before the barrier. */
    public int holders() {
        expect(PeerFrameType.PEER_ACK);
        return buf.getInt(base + PEER_ACK_HOLDERS_OFFSET);
    }

    /** Writes before the barrier a BARRIER_ACK confirms (u32). */
    public long count() {
        expect(PeerFrameType.BARRIER_ACK);
        return buf.getUnsignedInt(base + BARRIER_ACK_COUNT_OFFSET);
    }

    // --- BITMAP

    public long bitOffset() {
        expect(PeerFrameType.BITMAP);
        return buf.getLong(base + BITMAP_BIT_OFFSET_OFFSET);
    }

    public int runCount() {
        expect(PeerFrameType.BITMAP);
        return payloadLength() / Integer.BYTES;
    }

    /** Run {@code i}: even runs are clear bits, odd runs set bits (u32). */
    public long run(int i) {
        expect(PeerFrameType.BITMAP);
        return buf.getUnsignedInt(base + type.headBytes() + i * Integer.BYTES);
    }

    // --- RS_REQUEST

    public long requestLength() {
        expect(PeerFrameType.RS_REQUEST);
        return buf.getUnsignedInt(base + RS_REQUEST_LENGTH_OFFSET);
    }

    private String payloadString() {
        return buf.toString(base + type.headBytes(), payloadLength(), StandardCharsets.UTF_8);
    }

    private void expect(PeerFrameType t) {
        if (type != t) {
            throw wrongType(t.name());
        }
    }

    private void expect(PeerFrameType... ts) {
        for (PeerFrameType t : ts) {
            if (type == t) {
                return;
            }
        }
        throw wrongType(java.util.Arrays.toString(ts));
    }

    private IllegalStateException wrongType(String wanted) {
        return new IllegalStateException("a " + type + " frame has no such field (wanted " + wanted + ")");
    }

    @Override
    public String toString() {
        return buf == null ? "PeerFrame[unwrapped]"
                : "PeerFrame[" + type + ", flags 0x" + Integer.toHexString(flags()) + ", payload "
                + payloadLength() + " bytes]";
    }

    // --- wire codes of the enums the frames carry (stable; never the ordinal)

    /** The protocol byte: 'A', 'B' or 'C'. */
    public static int protocolCode(ReplicationProtocol p) {
        return p.name().charAt(0);
    }

    /** @return the protocol, or null for an unknown byte */
    public static ReplicationProtocol protocol(int code) {
        return switch (code) {
            case 'A' -> ReplicationProtocol.A;
            case 'B' -> ReplicationProtocol.B;
            case 'C' -> ReplicationProtocol.C;
            default -> null;
        };
    }

    public static int roleCode(Role r) {
        return switch (r) {
            case UNKNOWN -> 0;
            case PRIMARY -> 1;
            case SECONDARY -> 2;
        };
    }

    /** Unknown codes read as {@link Role#UNKNOWN}. */
    public static Role role(int code) {
        return switch (code) {
            case 1 -> Role.PRIMARY;
            case 2 -> Role.SECONDARY;
            default -> Role.UNKNOWN;
        };
    }

    public static int diskCode(DiskState d) {
        return switch (d) {
            case DUNKNOWN -> 0;
            case DISKLESS -> 1;
            case ATTACHING -> 2;
            case DETACHING -> 3;
            case FAILED -> 4;
            case NEGOTIATING -> 5;
            case INCONSISTENT -> 6;
            case OUTDATED -> 7;
            case CONSISTENT -> 8;
            case UP_TO_DATE -> 9;
        };
    }

    /** Unknown codes read as {@link DiskState#DUNKNOWN}. */
    public static DiskState diskState(int code) {
        return switch (code) {
            case 1 -> DiskState.DISKLESS;
            case 2 -> DiskState.ATTACHING;
            case 3 -> DiskState.DETACHING;
            case 4 -> DiskState.FAILED;
            case 5 -> DiskState.NEGOTIATING;
            case 6 -> DiskState.INCONSISTENT;
            case 7 -> DiskState.OUTDATED;
            case 8 -> DiskState.CONSISTENT;
            case 9 -> DiskState.UP_TO_DATE;
            default -> DiskState.DUNKNOWN;
        };
    }
}
