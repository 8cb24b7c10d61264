package io.replstor.replicator.net;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelOutboundInvoker;
import io.replstor.replicator.DiskState;
import io.replstor.replicator.Role;
import io.replstor.replicator.config.ReplicationProtocol;
import io.replstor.replicator.sync.GenerationIds;

import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * Writes frames in the {@link PeerFrame} format into buffers from the channel's (pooled) allocator.
 * One instance per connection, used on its event loop: it keeps the checksum state.
 *
 * <p>Control frames come back as one buffer holding the whole frame. DATA and RS_DATA come back as
 * their head only ({@link #dataHead}, {@link #rsDataHead}): the caller writes the head and then the
 * payload buffer it already has, so replicated data is never copied ({@link #writeData} does both).
 * Every returned buffer is owned by the caller.
 */
public final class PeerFrameEncoder {
    private final FrameChecksum checksum = new FrameChecksum();
    private final boolean checksumBulkPayloads;

    /**
     * @param checksumBulkPayloads whether DATA and RS_DATA payloads are covered by the CRC32C (control
     *                             frames always are)
     */
    public PeerFrameEncoder(boolean checksumBulkPayloads) {
        this.checksumBulkPayloads = checksumBulkPayloads;
    }

    /** Payload checksums on: the default. */
    public PeerFrameEncoder() {
        this(true);
    }

    public ByteBuf hello(ByteBufAllocator alloc, int versionMin, int versionMax, int nodeId, long volumeSizeBytes,
                         ReplicationProtocol protocol, int authAlgorithm, byte[] challenge, String resourceName) {
        return hello(alloc, versionMin, versionMax, nodeId, volumeSizeBytes, protocol, authAlgorithm, challenge,
                resourceName, PeerFrame.CHANNEL_DATA);
    }

    /** @param channel {@link PeerFrame#CHANNEL_DATA} or {@link PeerFrame#CHANNEL_META}, in the u16 after the algorithm */
    public ByteBuf hello(ByteBufAllocator alloc, int versionMin, int versionMax, int nodeId, long volumeSizeBytes,
                         ReplicationProtocol protocol, int authAlgorithm, byte[] challenge, String resourceName,
                         int channel) {
        if (challenge.length != PeerFrame.CHALLENGE_BYTES) {
            throw new IllegalArgumentException("challenge of " + challenge.length + " bytes; expected "
                    + PeerFrame.CHALLENGE_BYTES);
        }
        byte[] name = resourceName.getBytes(StandardCharsets.UTF_8);
        if (name.length < 1 || name.length > PeerFrame.RESOURCE_NAME_MAX_BYTES) {
            throw new IllegalArgumentException("resource name of " + name.length + " bytes; expected 1.."
                    + PeerFrame.RESOURCE_NAME_MAX_BYTES);
        }
        ByteBuf b = begin(alloc, PeerFrameType.HELLO, PeerFrame.FLAG_PAYLOAD_CHECKSUMMED, name.length);
        b.writeShort(versionMin).writeShort(versionMax).writeInt(nodeId).writeLong(volumeSizeBytes)
                .writeByte(PeerFrame.protocolCode(protocol)).writeByte(authAlgorithm).writeShort(channel)
                .writeBytes(challenge).writeBytes(name);
        return finish(b);
    }

    public ByteBuf authResponse(ByteBufAllocator alloc, byte[] hmac) {
        if (hmac.length != PeerFrame.HMAC_BYTES) {
            throw new IllegalArgumentException("HMAC of " + hmac.length + " bytes; expected " + PeerFrame.HMAC_BYTES);
        }
        ByteBuf b = begin(alloc, PeerFrameType.AUTH_RESPONSE, PeerFrame.FLAG_PAYLOAD_CHECKSUMMED, 0);
        b.writeBytes(hmac);
        return finish(b);
    }

    public ByteBuf authOk(ByteBufAllocator alloc) {
        return empty(alloc, PeerFrameType.AUTH_OK);
    }

    /** @param message cut to {@value PeerFrame#MESSAGE_MAX_BYTES} bytes of UTF-8 if longer */
    public ByteBuf refuse(ByteBufAllocator alloc, RefuseReason reason, String message) {
        return reasonFrame(alloc, PeerFrameType.REFUSE, reason.code(), message);
    }

    /** @param message cut to {@value PeerFrame#MESSAGE_MAX_BYTES} bytes of UTF-8 if longer */
    public ByteBuf disconnect(ByteBufAllocator alloc, DisconnectReason reason, String message) {
        return reasonFrame(alloc, PeerFrameType.DISCONNECT, reason.code(), message);
    }

    /**
     * @param bitmapUuid the sender's bitmap UUID for the receiver's slot
     * @param dataTerm   the newest term of any write the sender's disk holds
     * @param followers  with {@link PeerFrame#UUID_FLAG_ADOPT}: node-id bits of the nodes the new generation
     *                   reaches; else 0
     */
    public ByteBuf uuids(ByteBufAllocator alloc, long current, long bitmapUuid, long uuidFlags, long dataTerm,
                         int followers, long[] history) {
        if (history.length > PeerFrame.HISTORY_MAX_UUIDS) {
            throw new IllegalArgumentException(history.length + " history UUIDs; at most "
                    + PeerFrame.HISTORY_MAX_UUIDS);
        }
        ByteBuf b = begin(alloc, PeerFrameType.UUIDS, PeerFrame.FLAG_PAYLOAD_CHECKSUMMED,
                history.length * Long.BYTES);
        b.writeLong(current).writeLong(bitmapUuid).writeLong(uuidFlags).writeLong(dataTerm).writeInt(followers)
                .writeInt(0);
        for (long h : history) {
            b.writeLong(h);
        }
        return finish(b);
    }

    public ByteBuf uuids(ByteBufAllocator alloc, GenerationIds ids, long dataTerm) {
        List<Long> h = ids.history();
        long[] history = new long[h.size()];
        for (int i = 0; i < history.length; i++) {
            history[i] = h.get(i);
        }
        long flags = (ids.consistent() ? PeerFrame.UUID_FLAG_CONSISTENT : 0)
                | (ids.crashedPrimary() ? PeerFrame.UUID_FLAG_CRASHED_PRIMARY : 0);
        return uuids(alloc, ids.current(), ids.bitmap(), flags, dataTerm, 0, history);
    }

    public ByteBuf state(ByteBufAllocator alloc, Role role, DiskState disk, long term) {
        return state(alloc, role, disk, 0, term);
    }

    /**
     * @param stateFlags {@link PeerFrame#STATE_FLAG_SYNC_PAUSED} etc., in the u16 after the disk state
     * @param term       the newest term the sender's role authority applied
     */
    public ByteBuf state(ByteBufAllocator alloc, Role role, DiskState disk, int stateFlags, long term) {
        ByteBuf b = begin(alloc, PeerFrameType.STATE, PeerFrame.FLAG_PAYLOAD_CHECKSUMMED, 0);
        b.writeByte(PeerFrame.roleCode(role)).writeByte(PeerFrame.diskCode(disk)).writeShort(stateFlags).writeInt(0)
                .writeLong(term);
        return finish(b);
    }

    /**
     * The head of a DATA frame for {@code payload}'s readable bytes; write the payload right after it.
     * {@code payload} is read (for the checksum), not retained, not consumed.
     */
    public ByteBuf dataHead(ByteBufAllocator alloc, long term, long barrier, long sequence, long offset, int targets,
                            boolean fua, ByteBuf payload) {
        int flags = (fua ? PeerFrame.FLAG_FUA : 0) | (checksumBulkPayloads ? PeerFrame.FLAG_PAYLOAD_CHECKSUMMED : 0);
        ByteBuf b = begin(alloc, PeerFrameType.DATA, flags, payload.readableBytes());
        b.writeLong(term).writeLong(barrier).writeLong(sequence).writeLong(offset).writeInt(targets).writeInt(0);
        return finish(b, payload);
    }

    /**
     * Writes a DATA frame, head and {@code payload} as one message (safe from any thread), whose
     * ownership passes to the channel.
     *
     * @return the future of the frame's write
     */
    public ChannelFuture writeData(ChannelOutboundInvoker out, ByteBufAllocator alloc, long term, long barrier,
                                   long sequence, long offset, int targets, boolean fua, ByteBuf payload) {
        ByteBuf head;
        try {
            head = dataHead(alloc, term, barrier, sequence, offset, targets, fua, payload);
        } catch (RuntimeException e) {
            payload.release();
            throw e;
        }
        // one message: head and payload written from different threads must not interleave with other frames
        return out.write(Unpooled.wrappedBuffer(head, payload));
    }

    public ByteBuf recvAck(ByteBufAllocator alloc, long barrier, long sequence) {
        return ack(alloc, PeerFrameType.RECV_ACK, barrier, sequence);
    }

    public ByteBuf writeAck(ByteBufAllocator alloc, long barrier, long sequence) {
        return ack(alloc, PeerFrameType.WRITE_ACK, barrier, sequence);
    }

    public ByteBuf negAck(ByteBufAllocator alloc, long barrier, long sequence) {
        return ack(alloc, PeerFrameType.NEG_ACK, barrier, sequence);
    }

    public ByteBuf barrier(ByteBufAllocator alloc, long term, long barrier) {
        ByteBuf b = begin(alloc, PeerFrameType.BARRIER, PeerFrame.FLAG_PAYLOAD_CHECKSUMMED, 0);
        b.writeLong(term).writeLong(barrier);
        return finish(b);
    }

    /** @param count writes before the barrier, u32 */
    public ByteBuf barrierAck(ByteBufAllocator alloc, long barrier, long count) {
        ByteBuf b = begin(alloc, PeerFrameType.BARRIER_ACK, PeerFrame.FLAG_PAYLOAD_CHECKSUMMED, 0);
        b.writeLong(barrier).writeInt((int) count).writeInt(0);
        return finish(b);
    }

    /** @param holders node-id bits of the nodes that hold every write before {@code barrier} */
    public ByteBuf peerAck(ByteBufAllocator alloc, long barrier, int holders) {
        ByteBuf b = begin(alloc, PeerFrameType.PEER_ACK, PeerFrame.FLAG_PAYLOAD_CHECKSUMMED, 0);
        b.writeLong(barrier).writeInt(holders).writeInt(0);
        return finish(b);
    }

    public ByteBuf ping(ByteBufAllocator alloc) {
        return empty(alloc, PeerFrameType.PING);
    }

    public ByteBuf pingAck(ByteBufAllocator alloc) {
        return empty(alloc, PeerFrameType.PING_ACK);
    }

    /**
     * A chunk of a dirty bitmap: {@code runs[0..runCount)} alternately clear and set (u32 each),
     * starting with a clear run (0 if the chunk starts with set bits) at block {@code bitOffset}.
     */
    public ByteBuf bitmap(ByteBufAllocator alloc, long bitOffset, int[] runs, int runCount) {
        ByteBuf b = begin(alloc, PeerFrameType.BITMAP, PeerFrame.FLAG_PAYLOAD_CHECKSUMMED, runCount * Integer.BYTES);
        b.writeLong(bitOffset);
        for (int i = 0; i < runCount; i++) {
            b.writeInt(runs[i]);
        }
        return finish(b);
    }

    /** @param length bytes, u32 */
    public ByteBuf rsRequest(ByteBufAllocator alloc, long offset, long length) {
        ByteBuf b = begin(alloc, PeerFrameType.RS_REQUEST, PeerFrame.FLAG_PAYLOAD_CHECKSUMMED, 0);
        b.writeLong(offset).writeInt((int) length).writeInt(0);
        return finish(b);
    }

    /** The head of an RS_DATA frame for {@code payload}'s readable bytes (see {@link #dataHead}). */
    public ByteBuf rsDataHead(ByteBufAllocator alloc, long term, long offset, ByteBuf payload) {
        int flags = checksumBulkPayloads ? PeerFrame.FLAG_PAYLOAD_CHECKSUMMED : 0;
        ByteBuf b = begin(alloc, PeerFrameType.RS_DATA, flags, payload.readableBytes());
        b.writeLong(term).writeLong(offset);
        return finish(b, payload);
    }

    private ByteBuf ack(ByteBufAllocator alloc, PeerFrameType type, long barrier, long sequence) {
        ByteBuf b = begin(alloc, type, PeerFrame.FLAG_PAYLOAD_CHECKSUMMED, 0);
        b.writeLong(barrier).writeLong(sequence);
        return finish(b);
    }

    private ByteBuf empty(ByteBufAllocator alloc, PeerFrameType type) {
        return finish(begin(alloc, type, PeerFrame.FLAG_PAYLOAD_CHECKSUMMED, 0));
    }

    private ByteBuf reasonFrame(ByteBufAllocator alloc, PeerFrameType type, int reason, String message) {
        byte[] m = utf8Truncated(message, PeerFrame.MESSAGE_MAX_BYTES);
        ByteBuf b = begin(alloc, type, PeerFrame.FLAG_PAYLOAD_CHECKSUMMED, m.length);
        b.writeShort(reason).writeShort(0).writeBytes(m);
        return finish(b);
    }

    /** Header with the checksum left 0; the caller writes the fixed fields (and inline payload). */
    private static ByteBuf begin(ByteBufAllocator alloc, PeerFrameType type, int flags, int payloadLength) {
        boolean inline = !type.bulk() || type == PeerFrameType.BITMAP;
        ByteBuf b = alloc.buffer(type.headBytes() + (inline ? payloadLength : 0));
        b.writeInt(PeerFrame.MAGIC).writeShort(type.code()).writeShort(flags).writeInt(payloadLength).writeInt(0);
        return b;
    }

    /** Sets the checksum of a frame whose payload (if any) is in {@code b}. */
    private ByteBuf finish(ByteBuf b) {
        int headBytes = PeerFrameType.fromCode(b.getUnsignedShort(PeerFrame.TYPE_OFFSET)).headBytes();
        int c = checksum.compute(b, 0, headBytes, true, b, headBytes, b.writerIndex() - headBytes);
        b.setInt(PeerFrame.CHECKSUM_OFFSET, c);
        return b;
    }

    /** Sets the checksum of a head whose payload is the separate buffer {@code payload}. */
    private ByteBuf finish(ByteBuf head, ByteBuf payload) {
        boolean covered = (head.getUnsignedShort(PeerFrame.FLAGS_OFFSET) & PeerFrame.FLAG_PAYLOAD_CHECKSUMMED) != 0;
        int c = checksum.compute(head, 0, head.writerIndex(), covered, payload, payload.readerIndex(),
                payload.readableBytes());
        head.setInt(PeerFrame.CHECKSUM_OFFSET, c);
        return head;
    }

    /** UTF-8 bytes of {@code s}, cut at a character boundary to at most {@code max} bytes. */
    static byte[] utf8Truncated(String s, int max) {
        byte[] all = s.getBytes(StandardCharsets.UTF_8);
        if (all.length <= max) {
            return all;
        }
        int n = max;
        while (n > 0 && (all[n] & 0xC0) == 0x80) {
            n--;
        }
        return java.util.Arrays.copyOf(all, n);
    }
}
