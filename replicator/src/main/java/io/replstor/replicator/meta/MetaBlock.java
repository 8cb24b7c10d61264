package io.replstor.replicator.meta;

import java.nio.ByteBuffer;
import java.util.zip.CRC32C;

/**
 * The frame every metadata block shares: one 4 KiB unit, big-endian, checksummed.
 *
 * <pre>
 * offset  size  field
 *      0     4  magic               0x5250_4D44 ("RPMD")
 *      4     2  block type          1 superblock, 2 activity-log transaction, 3 bitmap
 *      6     2  format version      1
 *      8     8  transaction number  per type: superblock commit sequence, AL transaction
 *                                   number, bitmap flush sequence (see each block's javadoc)
 *     16  4076  payload             type-specific
 *   4092     4  CRC32C              over bytes [0, 4092)
 * </pre>
 *
 * A block that is all zeroes was never written. A block is only ever written whole, with one
 * positional write of 4 KiB at a 4 KiB-aligned offset, so a torn write shows as a CRC mismatch
 * (the magic, type and version of the old and new contents are the same).
 *
 * <p>Static helpers over a heap {@link ByteBuffer} holding one or more blocks, addressed by the
 * block's base offset in the buffer (absolute get/put: the buffer's position is never used).
 */
final class MetaBlock {
    static final int BLOCK_SIZE = 4096;
    static final int MAGIC = 0x5250_4D44;
    static final short FORMAT_VERSION = 1;

    static final int TYPE_SUPERBLOCK = 1;
    static final int TYPE_ACTIVITY_LOG = 2;
    static final int TYPE_BITMAP = 3;

    static final int MAGIC_OFFSET = 0;
    static final int TYPE_OFFSET = 4;
    static final int VERSION_OFFSET = 6;
    static final int TRANSACTION_OFFSET = 8;
    static final int PAYLOAD_OFFSET = 16;
    static final int CRC_OFFSET = BLOCK_SIZE - 4;
    static final int PAYLOAD_LENGTH = CRC_OFFSET - PAYLOAD_OFFSET;

    private MetaBlock() {
    }

    static String typeName(int type) {
        return switch (type) {
            case TYPE_SUPERBLOCK -> "superblock";
            case TYPE_ACTIVITY_LOG -> "activity-log";
            case TYPE_BITMAP -> "bitmap";
            default -> "unknown type " + type;
        };
    }

    /** Writes the header fields and the CRC of the block at {@code base}; the payload must be in place. */
    static void seal(ByteBuffer buf, int base, int type, long transaction) {
        buf.putInt(base + MAGIC_OFFSET, MAGIC);
        buf.putShort(base + TYPE_OFFSET, (short) type);
        buf.putShort(base + VERSION_OFFSET, FORMAT_VERSION);
        buf.putLong(base + TRANSACTION_OFFSET, transaction);
        buf.putInt(base + CRC_OFFSET, crc(buf, base));
    }

    static int crc(ByteBuffer buf, int base) {
        CRC32C crc = new CRC32C();
        crc.update(buf.array(), buf.arrayOffset() + base, CRC_OFFSET);
        return (int) crc.getValue();
    }

    static long transaction(ByteBuffer buf, int base) {
        return buf.getLong(base + TRANSACTION_OFFSET);
    }

    /** Checks the frame of the block at {@code base}: zeroes, magic, CRC, type, version, in that order. */
    static BlockCheck check(ByteBuffer buf, int base, int expectedType) {
        if (allZero(buf, base)) {
            return BlockCheck.of(BlockCheck.Reason.ALL_ZERO, -1, "all zeroes (never written)");
        }
        int magic = buf.getInt(base + MAGIC_OFFSET);
        if (magic != MAGIC) {
            return BlockCheck.of(BlockCheck.Reason.BAD_MAGIC, -1,
                    String.format("bad magic 0x%08x (expected 0x%08x)", magic, MAGIC));
        }
        int stored = buf.getInt(base + CRC_OFFSET);
        int computed = crc(buf, base);
        long txn = transaction(buf, base);
        if (stored != computed) {
            return BlockCheck.of(BlockCheck.Reason.BAD_CRC, txn,
                    String.format("CRC32C mismatch (stored 0x%08x, computed 0x%08x)", stored, computed));
        }
        int type = Short.toUnsignedInt(buf.getShort(base + TYPE_OFFSET));
        if (type != expectedType) {
            return BlockCheck.of(BlockCheck.Reason.BAD_TYPE, txn,
                    "block type " + typeName(type) + " where a " + typeName(expectedType) + " block belongs");
        }
        int version = Short.toUnsignedInt(buf.getShort(base + VERSION_OFFSET));
        if (version != FORMAT_VERSION) {
            return BlockCheck.of(BlockCheck.Reason.UNSUPPORTED_VERSION, txn, "format version " + version
                    + " (this build reads version " + FORMAT_VERSION + "; was it written by a newer replstor?)");
        }
        return BlockCheck.ok(txn);
    }

    private static boolean allZero(ByteBuffer buf, int base) {
        for (int i = 0; i < BLOCK_SIZE; i += Long.BYTES) {
            if (buf.getLong(base + i) != 0) {
                return false;
            }
        }
        return true;
    }
}
