package io.replstor.nbd.client;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageDecoder;
import io.netty.handler.codec.CorruptedFrameException;
import io.replstor.nbd.Nbd;
import java.util.List;

/**
 * Decodes what the server sends during the handshake (big-endian):
 *
 * <pre>
 * greeting         NBDMAGIC u64 | IHAVEOPT u64 | handshake flags u16                          (18 bytes)
 * option reply     OPTION_REPLY_MAGIC u64 | option u32 | reply type u32 | length u32 | data  (20 bytes + length)
 * EXPORT_NAME ok   size u64 | transmission flags u16 | 124 zero bytes unless NO_ZEROES       (10 or 134 bytes)
 * </pre>
 *
 * The greeting comes first; after it, option replies, until {@link #expectExportNameReply} switches to the
 * one EXPORT_NAME reply. Reply data is bounded by {@link #MAX_OPTION_REPLY_BYTES}: the longest legitimate reply
 * is a {@code REP_SERVER} with a 4 KiB name and a 4 KiB description. On a framing error the decoder throws
 * once and then discards everything, since the stream cannot be resynchronised.
 */
final class OptionReplyDecoder extends ByteToMessageDecoder {
    static final int GREETING_BYTES = 18;
    static final int OPTION_REPLY_HEADER_BYTES = 20;
    static final int EXPORT_NAME_REPLY_BYTES = 10;
    static final int EXPORT_NAME_PADDING_BYTES = 124;
    static final int MAX_OPTION_REPLY_BYTES = 64 * 1024;
    /** The oldstyle greeting's second magic; named only to give a clear error. */
    private static final long OLDSTYLE_MAGIC = 0x00420281861253L;

    private enum State { GREETING, REPLY_HEADER, REPLY_DATA, EXPORT_NAME_REPLY, DONE, FAILED }

    private State state = State.GREETING;
    private int option;
    private int replyType;
    private int dataLength;
    private boolean noZeroes;

    /** The next thing from the server is the reply to EXPORT_NAME; {@code noZeroes} if both sides set NO_ZEROES. */
    void expectExportNameReply(boolean bothNoZeroes) {
        if (state != State.REPLY_HEADER) {
            throw new IllegalStateException("EXPORT_NAME reply expected in state " + state);
        }
        noZeroes = bothNoZeroes;
        state = State.EXPORT_NAME_REPLY;
    }

    @Override
    protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
        switch (state) {
            case GREETING -> decodeGreeting(in, out);
            case REPLY_HEADER -> decodeReplyHeader(in, out);
            case REPLY_DATA -> decodeReplyData(in, out);
            case EXPORT_NAME_REPLY -> decodeExportNameReply(in, out);
            // DONE: the bytes belong to the transmission phase; the handler that replaces us receives them.
            case DONE -> { }
            case FAILED -> in.skipBytes(in.readableBytes());
            default -> throw new IllegalStateException(state.name());
        }
    }

    private void decodeGreeting(ByteBuf in, List<Object> out) {
        if (in.readableBytes() < GREETING_BYTES) {
            return;
        }
        long magic = in.readLong();
        long optMagic = in.readLong();
        int flags = in.readUnsignedShort();
        if (magic != Nbd.NBDMAGIC) {
            throw corrupted(String.format("not an NBD server: greeting starts with 0x%016x, not NBDMAGIC", magic));
        }
        if (optMagic == OLDSTYLE_MAGIC) {
            throw corrupted("the server uses oldstyle negotiation, which this client does not support");
        }
        if (optMagic != Nbd.IHAVEOPT) {
            throw corrupted(String.format("greeting has 0x%016x where IHAVEOPT belongs", optMagic));
        }
        state = State.REPLY_HEADER;
        out.add(new HandshakeMessages.Greeting(flags));
    }

    private void decodeReplyHeader(ByteBuf in, List<Object> out) {
        if (in.readableBytes() < OPTION_REPLY_HEADER_BYTES) {
            return;
        }
        long magic = in.readLong();
        option = in.readInt();
        replyType = in.readInt();
        long length = in.readUnsignedInt();
        if (magic != Nbd.OPTION_REPLY_MAGIC) {
            throw corrupted(String.format("option reply magic is 0x%016x, expected 0x%016x",
                    magic, Nbd.OPTION_REPLY_MAGIC));
        }
        if (length > MAX_OPTION_REPLY_BYTES) {
            throw corrupted("option reply to " + Nbd.optionName(option) + " announces " + length
                    + " bytes of data, more than the " + MAX_OPTION_REPLY_BYTES + " this client accepts");
        }
        dataLength = (int) length;
        state = State.REPLY_DATA;
        decodeReplyData(in, out);
    }

    private void decodeReplyData(ByteBuf in, List<Object> out) {
        if (in.readableBytes() < dataLength) {
            return;
        }
        state = State.REPLY_HEADER;
        out.add(new OptionReply(option, replyType, in.readRetainedSlice(dataLength)));
    }

    private void decodeExportNameReply(ByteBuf in, List<Object> out) {
        int needed = EXPORT_NAME_REPLY_BYTES + (noZeroes ? 0 : EXPORT_NAME_PADDING_BYTES);
        if (in.readableBytes() < needed) {
            return;
        }
        long size = in.readLong();
        int flags = in.readUnsignedShort();
        in.skipBytes(needed - EXPORT_NAME_REPLY_BYTES);
        state = State.DONE;
        out.add(new HandshakeMessages.ExportNameReply(size, flags));
    }

    private CorruptedFrameException corrupted(String message) {
        state = State.FAILED;
        return new CorruptedFrameException(message);
    }
}
