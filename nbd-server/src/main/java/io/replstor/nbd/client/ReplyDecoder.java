package io.replstor.nbd.client;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageDecoder;
import io.netty.handler.codec.CorruptedFrameException;
import io.replstor.nbd.Nbd;
import java.util.List;

/**
 * Decodes transmission-phase replies (big-endian) into {@link SimpleReply} and {@link ReplyChunk}:
 *
 * <pre>
 * simple reply   SIMPLE_REPLY_MAGIC u32 | error u32 | cookie u64                          (16 bytes)
 *                then, for a successful READ only, the request's length in data bytes
 * chunk          STRUCTURED_REPLY_MAGIC u32 | flags u16 | type u16 | cookie u64 | length u32 (20 bytes)
 *                then length bytes of payload
 * </pre>
 *
 * A simple reply does not carry its own length, so the decoder asks {@link RequestLookup} whether the cookie
 * belongs to an in-flight READ. That is safe because each decoded reply reaches the transmission handler
 * before the next header is decoded. Chunk payloads are bounded: a READ's by its length plus the 8-byte offset,
 * anything else by {@link #MAX_OTHER_CHUNK_BYTES} (2^20 block-status extents). After a framing error the
 * decoder throws once and then discards everything, since the stream cannot be resynchronised.
 */
final class ReplyDecoder extends ByteToMessageDecoder {
    /** The largest BLOCK_STATUS chunk the protocol allows: context id + 2^20 (length, flags) pairs. */
    static final int MAX_OTHER_CHUNK_BYTES = 4 + (8 << 20);
    static final int OFFSET_DATA_HEADER_BYTES = 8;
    private static final int MAGIC_BYTES = 4;

    /** Answers for the decoder, on the event loop. */
    interface RequestLookup {
        /** The length of the READ in flight under {@code cookie}, or -1 if there is none. */
        int readLength(long cookie);
    }

    private enum State { HEADER, SIMPLE_DATA, CHUNK_PAYLOAD, FAILED }

    private final RequestLookup lookup;
    private State state = State.HEADER;
    private long cookie;
    private int error;
    private int chunkFlags;
    private int chunkType;
    private int payloadLength;

    ReplyDecoder(RequestLookup lookup) {
        this.lookup = lookup;
    }

    @Override
    protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
        switch (state) {
            case HEADER -> decodeHeader(in, out);
            case SIMPLE_DATA -> decodeSimpleData(in, out);
            case CHUNK_PAYLOAD -> decodeChunkPayload(in, out);
            case FAILED -> in.skipBytes(in.readableBytes());
            default -> throw new IllegalStateException(state.name());
        }
    }

    private void decodeHeader(ByteBuf in, List<Object> out) {
        if (in.readableBytes() < MAGIC_BYTES) {
            return;
        }
        int magic = in.getInt(in.readerIndex());
        if (magic == Nbd.SIMPLE_REPLY_MAGIC) {
            decodeSimpleHeader(in, out);
        } else if (magic == Nbd.STRUCTURED_REPLY_MAGIC) {
            decodeChunkHeader(in, out);
        } else {
            state = State.FAILED;
            throw new CorruptedFrameException(String.format("reply magic is 0x%08x, neither simple (0x%08x) nor "
                    + "structured (0x%08x)", magic, Nbd.SIMPLE_REPLY_MAGIC, Nbd.STRUCTURED_REPLY_MAGIC));
        }
    }

    private void decodeSimpleHeader(ByteBuf in, List<Object> out) {
        if (in.readableBytes() < Nbd.SIMPLE_REPLY_HEADER_BYTES) {
            return;
        }
        in.skipBytes(MAGIC_BYTES);
        error = in.readInt();
        cookie = in.readLong();
        payloadLength = error == 0 ? Math.max(0, lookup.readLength(cookie)) : 0;
        if (payloadLength == 0) {
            out.add(new SimpleReply(cookie, error, Unpooled.EMPTY_BUFFER));
            return;
        }
        state = State.SIMPLE_DATA;
        decodeSimpleData(in, out);
    }

    private void decodeSimpleData(ByteBuf in, List<Object> out) {
        if (in.readableBytes() < payloadLength) {
            return;
        }
        state = State.HEADER;
        out.add(new SimpleReply(cookie, 0, in.readRetainedSlice(payloadLength)));
    }

    private void decodeChunkHeader(ByteBuf in, List<Object> out) {
        if (in.readableBytes() < Nbd.CHUNK_HEADER_BYTES) {
            return;
        }
        in.skipBytes(MAGIC_BYTES);
        chunkFlags = in.readUnsignedShort();
        chunkType = in.readUnsignedShort();
        cookie = in.readLong();
        long length = in.readUnsignedInt();
        int readLength = lookup.readLength(cookie);
        long limit = Math.max(MAX_OTHER_CHUNK_BYTES, readLength < 0 ? 0 : readLength + (long) OFFSET_DATA_HEADER_BYTES);
        if (length > limit) {
            state = State.FAILED;
            throw new CorruptedFrameException("chunk of type " + chunkType + " for cookie " + cookie + " announces "
                    + length + " payload bytes, more than the " + limit + " its request allows");
        }
        payloadLength = (int) length;
        state = State.CHUNK_PAYLOAD;
        decodeChunkPayload(in, out);
    }

    private void decodeChunkPayload(ByteBuf in, List<Object> out) {
        if (in.readableBytes() < payloadLength) {
            return;
        }
        state = State.HEADER;
        ByteBuf payload = payloadLength == 0 ? Unpooled.EMPTY_BUFFER : in.readRetainedSlice(payloadLength);
        out.add(new ReplyChunk(cookie, chunkFlags, chunkType, payload));
    }
}
