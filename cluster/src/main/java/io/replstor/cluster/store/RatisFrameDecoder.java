package io.replstor.cluster.store;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageDecoder;
import io.netty.handler.codec.CorruptedFrameException;

import java.util.List;

/**
 * Cuts this node's Ratis connection into Ratis' own frames, so the gateway always knows where a request
 * starts (when a member is lost, the next request is answered by {@link UnreachableMember}, not cut).
 *
 * <pre>
 * frame := length:varint32 (protobuf base-128, 1-5 bytes) message:length bytes (a RaftNettyServerRequestProto)
 * </pre>
 *
 * Each frame is passed on whole, length prefix included, as a retained slice the receiver owns.
 */
final class RatisFrameDecoder extends ByteToMessageDecoder {
    /** Far above anything the store sends (entries are small; a snapshot chunk is a whole small snapshot). */
    static final int FRAME_MAX_BYTES = 64 << 20;
    private static final int VARINT_MAX_BYTES = 5;

    @Override
    protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
        while (in.isReadable()) {
            int start = in.readerIndex();
            int length = readVarint32(in);
            if (length == -1) {
                in.readerIndex(start); // the prefix is not complete yet
                return;
            }
            if (length < 0 || length > FRAME_MAX_BYTES) {
                throw new CorruptedFrameException("Ratis frame of " + length + " bytes (at most " + FRAME_MAX_BYTES
                        + ")");
            }
            int prefix = in.readerIndex() - start;
            in.readerIndex(start);
            if (in.readableBytes() < prefix + length) {
                return;
            }
            out.add(in.readRetainedSlice(prefix + length));
        }
    }

    /** @return the value, -1 if the varint is not complete, or -2 if it is malformed */
    static int readVarint32(ByteBuf in) {
        int value = 0;
        for (int i = 0; i < VARINT_MAX_BYTES; i++) {
            if (!in.isReadable()) {
                return -1;
            }
            byte b = in.readByte();
            value |= (b & 0x7f) << (7 * i);
            if (b >= 0) {
                return value;
            }
        }
        return -2;
    }

    static void writeVarint32(ByteBuf out, int value) {
        while ((value & ~0x7f) != 0) {
            out.writeByte((value & 0x7f) | 0x80);
            value >>>= 7;
        }
        out.writeByte(value);
    }
}
