package io.replstor.replicator.meta;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.ByteBuffer;

import static io.replstor.replicator.meta.MetaBlock.BLOCK_SIZE;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MetaBlockTest {

    private static ByteBuffer sealed(int type, long txn) {
        ByteBuffer b = ByteBuffer.allocate(2 * BLOCK_SIZE);
        b.putLong(BLOCK_SIZE + 100, 0x1122334455667788L);
        MetaBlock.seal(b, BLOCK_SIZE, type, txn);
        return b;
    }

    @Test
    @Timeout(5)
    void sealedBlockIsValidAndCarriesItsTransaction() {
        BlockCheck c = MetaBlock.check(sealed(MetaBlock.TYPE_BITMAP, 42), BLOCK_SIZE, MetaBlock.TYPE_BITMAP);
        assertEquals(BlockCheck.Status.VALID, c.status());
        assertEquals(42, c.transaction());
    }

    @Test
    @Timeout(5)
    void allZeroBlockIsTornOrUnwrittenNotCorrupt() {
        BlockCheck c = MetaBlock.check(ByteBuffer.allocate(BLOCK_SIZE), 0, MetaBlock.TYPE_SUPERBLOCK);
        assertEquals(BlockCheck.Status.TORN_OR_UNWRITTEN, c.status());
        assertEquals(BlockCheck.Reason.ALL_ZERO, c.reason());
    }

    @Test
    @Timeout(5)
    void flippedPayloadByteIsCorruptByCrc() {
        ByteBuffer b = sealed(MetaBlock.TYPE_BITMAP, 7);
        b.put(BLOCK_SIZE + 2000, (byte) 1);
        BlockCheck c = MetaBlock.check(b, BLOCK_SIZE, MetaBlock.TYPE_BITMAP);
        assertEquals(BlockCheck.Status.CORRUPT, c.status());
        assertEquals(BlockCheck.Reason.BAD_CRC, c.reason());
        assertTrue(c.detail().contains("CRC32C mismatch"), c.detail());
    }

    @Test
    @Timeout(5)
    void wrongMagicIsCorrupt() {
        ByteBuffer b = sealed(MetaBlock.TYPE_BITMAP, 7);
        b.putInt(BLOCK_SIZE, 0xCAFEBABE);
        assertEquals(BlockCheck.Reason.BAD_MAGIC, MetaBlock.check(b, BLOCK_SIZE, MetaBlock.TYPE_BITMAP).reason());
    }

    @Test
    @Timeout(5)
    void intactBlockOfAnotherTypeIsCorruptWhereItDoesNotBelong() {
        BlockCheck c = MetaBlock.check(sealed(MetaBlock.TYPE_ACTIVITY_LOG, 3), BLOCK_SIZE, MetaBlock.TYPE_BITMAP);
        assertEquals(BlockCheck.Reason.BAD_TYPE, c.reason());
        assertTrue(c.detail().contains("activity-log"), c.detail());
    }

    @Test
    @Timeout(5)
    void newerFormatVersionIsRefusedAsUnsupported() {
        ByteBuffer b = ByteBuffer.allocate(BLOCK_SIZE);
        MetaBlock.seal(b, 0, MetaBlock.TYPE_SUPERBLOCK, 1);
        b.putShort(MetaBlock.VERSION_OFFSET, (short) 2);
        b.putInt(MetaBlock.CRC_OFFSET, MetaBlock.crc(b, 0));
        BlockCheck c = MetaBlock.check(b, 0, MetaBlock.TYPE_SUPERBLOCK);
        assertEquals(BlockCheck.Reason.UNSUPPORTED_VERSION, c.reason());
        assertEquals(BlockCheck.Status.CORRUPT, c.status());
    }
}
