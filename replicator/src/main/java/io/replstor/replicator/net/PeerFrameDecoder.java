package io.replstor.replicator.net;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageDecoder;

import java.util.List;

/**
 * Splits the byte stream from a peer into validated frames ({@link PeerFrame} describes the format).
 * Each frame goes up the pipeline as one {@link ByteBuf}: a retained slice of the received bytes
 * holding exactly header, fixed fields and payload, readable with a {@link PeerFrame} flyweight.
 * The receiver owns it and must release it.
 *
 * <p>An explicit state machine:
 * <ul>
 * <li>HEADER: wait for the 16-byte header; check magic, type, flags and the payload length against
 *     the type's shape and the connection maximum, before any payload is buffered.</li>
 * <li>BODY: wait for the whole frame; verify the CRC32C; emit a retained slice (no copy).</li>
 * <li>BAD: after a {@link PeerProtocolException}, every further byte is discarded; the connection
 *     is to be closed.</li>
 * </ul>
 * Bytes that arrive in pieces are gathered by {@link ByteToMessageDecoder}'s cumulation, which
 * Netty releases when the channel goes inactive or the handler is removed. A stream that ends in
 * the middle of a frame raises a {@link PeerProtocolException} too.
 */
public final class PeerFrameDecoder extends ByteToMessageDecoder {
    /** The default bound on DATA, RS_DATA and BITMAP payloads: 1 MiB. */
    public static final int DEFAULT_MAX_PAYLOAD_BYTES = 1 << 20;

    private enum State { HEADER, BODY, BAD }

    private final int maxPayloadBytes;
    private final FrameChecksum checksum = new FrameChecksum();
    private State state = State.HEADER;
    private PeerFrameType type;
    private int frameBytes;
    /** Stream position of the frame being decoded, for error messages. */
    private long streamOffset;

    public PeerFrameDecoder() {
        this(DEFAULT_MAX_PAYLOAD_BYTES);
    }

    /** @param maxPayloadBytes the largest DATA, RS_DATA or BITMAP payload accepted */
    public PeerFrameDecoder(int maxPayloadBytes) {
        if (maxPayloadBytes < 1) {
            throw new IllegalArgumentException("maxPayloadBytes " + maxPayloadBytes + " must be positive");
        }
        this.maxPayloadBytes = maxPayloadBytes;
    }

    @Override
    protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
        try {
            switch (state) {
                case HEADER -> {
                    if (in.readableBytes() >= PeerFrame.HEADER_BYTES) {
                        readHeader(in);
                        state = State.BODY;
                        readBody(in, out);
                    }
                }
                case BODY -> readBody(in, out);
                case BAD -> in.skipBytes(in.readableBytes());
                default -> throw new IllegalStateException(state.name());
            }
        } catch (PeerProtocolException e) {
            state = State.BAD;
            in.skipBytes(in.readableBytes());
            throw e;
        }
    }

    /** Validates the header at the reader index without consuming it. */
    private void readHeader(ByteBuf in) {
        int at = in.readerIndex();
        int magic = in.getInt(at + PeerFrame.MAGIC_OFFSET);
        if (magic != PeerFrame.MAGIC) {
            throw error("bad frame magic 0x" + hex(magic) + " (expected 0x" + hex(PeerFrame.MAGIC)
                    + " \"RPL1\"): the peer does not speak this protocol, or the stream lost its framing");
        }
        int code = in.getUnsignedShort(at + PeerFrame.TYPE_OFFSET);
        PeerFrameType t = PeerFrameType.fromCode(code);
        if (t == null) {
            throw error("unknown frame type " + code + " (this node knows 1.." + PeerFrameType.values().length + ")");
        }
        int flags = in.getUnsignedShort(at + PeerFrame.FLAGS_OFFSET);
        if ((flags & ~t.allowedFlags()) != 0) {
            throw error(t + " frame with unknown flag bits 0x" + Integer.toHexString(flags & ~t.allowedFlags()));
        }
        long length = in.getUnsignedInt(at + PeerFrame.LENGTH_OFFSET);
        long max = t.bulk() ? maxPayloadBytes : t.maxPayloadBytes();
        if (length > max) {
            throw error(t + " frame declares a payload of " + length + " bytes; the maximum is " + max
                    + (t.bulk() ? " (the connection's max payload)" : ""));
        }
        if (length < t.minPayloadBytes() || length % t.payloadUnitBytes() != 0) {
            throw error(t + " frame declares a payload of " + length + " bytes; expected at least "
                    + t.minPayloadBytes() + (t.payloadUnitBytes() > 1 ? " in units of " + t.payloadUnitBytes() : ""));
        }
        type = t;
        frameBytes = t.headBytes() + (int) length;
    }

    private void readBody(ByteBuf in, List<Object> out) {
        if (in.readableBytes() < frameBytes) {
            return;
        }
        int at = in.readerIndex();
        int head = type.headBytes();
        boolean covered = (in.getUnsignedShort(at + PeerFrame.FLAGS_OFFSET) & PeerFrame.FLAG_PAYLOAD_CHECKSUMMED) != 0;
        int expected = checksum.compute(in, at, head, covered, in, at + head, frameBytes - head);
        int actual = in.getInt(at + PeerFrame.CHECKSUM_OFFSET);
        if (expected != actual) {
            throw error(type + " frame of " + frameBytes + " bytes fails its CRC32C (carried 0x" + hex(actual)
                    + ", computed 0x" + hex(expected) + (covered ? ", payload included" : ", head only")
                    + "): corrupted in transit");
        }
        out.add(in.readRetainedSlice(frameBytes));
        streamOffset += frameBytes;
        state = State.HEADER;
    }

    @Override
    protected void decodeLast(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
        if (in.isReadable()) {
            decode(ctx, in, out);
        }
        if (in.isReadable() && state != State.BAD) {
            int have = in.readableBytes();
            String what = state == State.BODY ? "a " + type + " frame of " + frameBytes + " bytes"
                    : "a frame header of " + PeerFrame.HEADER_BYTES + " bytes";
            in.skipBytes(have);
            state = State.BAD;
            throw error("connection closed inside " + what + ": only " + have + " bytes arrived");
        }
    }

    private PeerProtocolException error(String what) {
        return new PeerProtocolException(what + " (frame at stream byte " + streamOffset + ")");
    }

    private static String hex(int v) {
        return String.format("%08X", v);
    }
}
