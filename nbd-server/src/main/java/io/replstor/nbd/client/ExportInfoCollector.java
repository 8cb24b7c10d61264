package io.replstor.nbd.client;

import io.netty.buffer.ByteBuf;
import io.replstor.nbd.Nbd;
import java.nio.charset.StandardCharsets;

/**
 * Collects the {@code NBD_REP_INFO} replies to INFO or GO. Reply data: info type u16, then
 *
 * <pre>
 * INFO_EXPORT       size u64 | transmission flags u16          (10 bytes)
 * INFO_NAME         name (the rest, UTF-8)
 * INFO_DESCRIPTION  description (the rest, UTF-8)
 * INFO_BLOCK_SIZE   minimum u32 | preferred u32 | max payload u32 (12 bytes)
 * </pre>
 *
 * Unknown info types are ignored, as the protocol requires. Block sizes are checked against the protocol's
 * MUSTs, so a broken server is named rather than obeyed.
 */
final class ExportInfoCollector {
    private static final int INFO_EXPORT_BYTES = 10;
    private static final int INFO_BLOCK_SIZE_BYTES = 12;
    private static final long MAX_BLOCK_SIZE_MIN = 64 * 1024;
    private static final long NO_PAYLOAD_LIMIT = 0xffffffffL;

    private final String where;
    private final int option;
    private String name;
    private String description = "";
    private long sizeBytes = -1;
    private int transmissionFlags;
    private int blockSizeMin = ExportInfo.DEFAULT_BLOCK_SIZE_MIN;
    private int blockSizePreferred = ExportInfo.DEFAULT_BLOCK_SIZE_PREFERRED;
    private long blockSizeMaxPayload = ExportInfo.DEFAULT_BLOCK_SIZE_MAX_PAYLOAD;
    private boolean blockSizeAdvertised;

    /** {@code where} names server and export for messages; {@code option} is INFO or GO. */
    ExportInfoCollector(String where, int option, String requestedName) {
        this.where = where;
        this.option = option;
        this.name = requestedName;
    }

    void accept(OptionReply reply) throws NbdException {
        if (reply.type() != Nbd.REP_INFO) {
            throw violation("sent " + NbdException.replyTypeName(reply.type()) + ", expected INFO or ACK");
        }
        ByteBuf data = reply.content();
        if (data.readableBytes() < 2) {
            throw violation("sent an INFO reply of " + data.readableBytes() + " bytes, too short for the info type");
        }
        int infoType = data.readUnsignedShort();
        switch (infoType) {
            case Nbd.INFO_EXPORT -> export(data);
            case Nbd.INFO_NAME -> name = data.readCharSequence(data.readableBytes(), StandardCharsets.UTF_8).toString();
            case Nbd.INFO_DESCRIPTION ->
                    description = data.readCharSequence(data.readableBytes(), StandardCharsets.UTF_8).toString();
            case Nbd.INFO_BLOCK_SIZE -> blockSize(data);
            default -> data.skipBytes(data.readableBytes());
        }
    }

    private void export(ByteBuf data) throws NbdException {
        if (data.readableBytes() != INFO_EXPORT_BYTES) {
            throw violation("sent INFO_EXPORT with " + data.readableBytes() + " bytes, expected " + INFO_EXPORT_BYTES);
        }
        long size = data.readLong();
        if (size < 0) {
            throw violation("announced an export size over 2^63 bytes: " + Long.toUnsignedString(size));
        }
        sizeBytes = size;
        transmissionFlags = data.readUnsignedShort();
    }

    private void blockSize(ByteBuf data) throws NbdException {
        if (data.readableBytes() != INFO_BLOCK_SIZE_BYTES) {
            throw violation("sent INFO_BLOCK_SIZE with " + data.readableBytes() + " bytes, expected "
                    + INFO_BLOCK_SIZE_BYTES);
        }
        long min = data.readUnsignedInt();
        long preferred = data.readUnsignedInt();
        long max = data.readUnsignedInt();
        String sizes = "block sizes min " + min + ", preferred " + preferred + ", max payload " + max;
        if (Long.bitCount(min) != 1 || min > MAX_BLOCK_SIZE_MIN) {
            throw violation("sent " + sizes + ": the minimum must be a power of 2 up to 64 KiB");
        }
        if (Long.bitCount(preferred) != 1 || preferred < Math.max(min, 512) || preferred > Integer.MAX_VALUE) {
            throw violation("sent " + sizes + ": the preferred size must be a power of 2 of at least max(min, 512)");
        }
        if (max != NO_PAYLOAD_LIMIT && (max < preferred || max % min != 0)) {
            throw violation("sent " + sizes + ": the max payload must be at least the preferred size and a "
                    + "multiple of the minimum (or 0xffffffff)");
        }
        blockSizeMin = (int) min;
        blockSizePreferred = (int) preferred;
        blockSizeMaxPayload = max;
        blockSizeAdvertised = true;
    }

    /** Called on ACK: INFO_EXPORT is mandatory. */
    ExportInfo build() throws NbdException {
        if (sizeBytes < 0) {
            throw violation("ACKed without sending INFO_EXPORT");
        }
        return new ExportInfo(name, description, sizeBytes, transmissionFlags, blockSizeMin, blockSizePreferred,
                blockSizeMaxPayload, blockSizeAdvertised);
    }

    private NbdException violation(String what) {
        return new NbdException(NbdException.Kind.PROTOCOL_VIOLATION,
                where + " " + what + " in reply to " + Nbd.optionName(option));
    }
}
