package io.replstor.nbd.client;

import io.netty.buffer.ByteBuf;
import io.replstor.nbd.Nbd;

/**
 * The 28-byte transmission request header (compact mode), big-endian; a WRITE's data follows it:
 *
 * <pre>
 * offset  0  REQUEST_MAGIC u32
 * offset  4  command flags u16
 * offset  6  command type u16
 * offset  8  cookie u64
 * offset 16  offset u64
 * offset 24  length u32
 * </pre>
 */
final class RequestHeader {
    static final int MAGIC_OFFSET = 0;
    static final int FLAGS_OFFSET = 4;
    static final int TYPE_OFFSET = 6;
    static final int COOKIE_OFFSET = 8;
    static final int OFFSET_OFFSET = 16;
    static final int LENGTH_OFFSET = 24;

    private RequestHeader() {
    }

    /** Appends one header at the writer index of {@code out}. */
    static ByteBuf write(ByteBuf out, int flags, int type, long cookie, long offset, long length) {
        int base = out.writerIndex();
        out.ensureWritable(Nbd.REQUEST_HEADER_BYTES);
        out.setInt(base + MAGIC_OFFSET, Nbd.REQUEST_MAGIC)
                .setShort(base + FLAGS_OFFSET, flags)
                .setShort(base + TYPE_OFFSET, type)
                .setLong(base + COOKIE_OFFSET, cookie)
                .setLong(base + OFFSET_OFFSET, offset)
                .setInt(base + LENGTH_OFFSET, (int) length);
        return out.writerIndex(base + Nbd.REQUEST_HEADER_BYTES);
    }
}
