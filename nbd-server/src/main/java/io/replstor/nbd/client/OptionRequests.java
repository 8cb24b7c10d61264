package io.replstor.nbd.client;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.ByteBufUtil;
import io.replstor.nbd.Nbd;
import java.util.List;

/**
 * Encodes what the client sends during the handshake (big-endian):
 *
 * <pre>
 * client flags       u32
 * option             IHAVEOPT u64 | option u32 | length u32 | data[length]
 * INFO / GO data     name length u32 | name | info request count u16 | info type u16 * count
 * SET_META_CONTEXT   export name length u32 | export name | query count u32 | (query length u32 | query) * count
 * </pre>
 */
final class OptionRequests {
    static final int OPTION_HEADER_BYTES = 16;
    private static final int LENGTH_OFFSET = 12;

    private OptionRequests() {
    }

    static ByteBuf clientFlags(ByteBufAllocator alloc, int flags) {
        return alloc.buffer(4).writeInt(flags);
    }

    /** An option with no data. */
    static ByteBuf option(ByteBufAllocator alloc, int option) {
        return begin(alloc, option, 0).writeInt(0);
    }

    /** {@code NBD_OPT_EXPORT_NAME}: the data is the bare name. */
    static ByteBuf exportName(ByteBufAllocator alloc, String name) {
        ByteBuf buf = begin(alloc, Nbd.OPT_EXPORT_NAME, ByteBufUtil.utf8MaxBytes(name));
        buf.writeInt(0);
        int start = buf.writerIndex();
        ByteBufUtil.writeUtf8(buf, name);
        return finish(buf, start);
    }

    /** {@code NBD_OPT_INFO} or {@code NBD_OPT_GO} for {@code name}, asking for {@code infoTypes}. */
    static ByteBuf exportQuery(ByteBufAllocator alloc, int option, String name, int... infoTypes) {
        ByteBuf buf = begin(alloc, option, 4 + ByteBufUtil.utf8MaxBytes(name) + 2 + 2 * infoTypes.length);
        buf.writeInt(0);
        int start = buf.writerIndex();
        writeString32(buf, name);
        buf.writeShort(infoTypes.length);
        for (int type : infoTypes) {
            buf.writeShort(type);
        }
        return finish(buf, start);
    }

    /** {@code NBD_OPT_SET_META_CONTEXT} or {@code NBD_OPT_LIST_META_CONTEXT}. */
    static ByteBuf metaContextQuery(ByteBufAllocator alloc, int option, String exportName, List<String> queries) {
        ByteBuf buf = begin(alloc, option, 64);
        buf.writeInt(0);
        int start = buf.writerIndex();
        writeString32(buf, exportName);
        buf.writeInt(queries.size());
        for (String query : queries) {
            writeString32(buf, query);
        }
        return finish(buf, start);
    }

    private static ByteBuf begin(ByteBufAllocator alloc, int option, int dataBytesHint) {
        return alloc.buffer(OPTION_HEADER_BYTES + dataBytesHint).writeLong(Nbd.IHAVEOPT).writeInt(option);
    }

    /** Patches the length field now that the data is written. */
    private static ByteBuf finish(ByteBuf buf, int dataStart) {
        return buf.setInt(buf.readerIndex() + LENGTH_OFFSET, buf.writerIndex() - dataStart);
    }

    private static void writeString32(ByteBuf buf, String value) {
        int lengthAt = buf.writerIndex();
        buf.writeInt(0);
        int written = ByteBufUtil.writeUtf8(buf, value);
        buf.setInt(lengthAt, written);
    }
}
