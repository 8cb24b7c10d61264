package io.replstor.replicator.meta;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static io.replstor.replicator.meta.MetaFiles.MIB;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DirtyBitmapTest {
    /** 256 MiB: 65536 bits, 3 bitmap blocks per slot (32512 bits each). */
    private static final long SIZE = 256 * MIB;

    @TempDir
    Path dir;

    private Metadata create(int maxPeers) throws Exception {
        return MetaFiles.create(dir.resolve("r0.img"), SIZE, CreateOptions.of("r0", 0).withMaxPeers(maxPeers));
    }

    private static List<long[]> ranges(DirtyBitmap b, int slot) {
        List<long[]> out = new ArrayList<>();
        b.forEachDirtyRange(slot, (offset, length) -> out.add(new long[] {offset, length}));
        return out;
    }

    @Test
    @Timeout(10)
    void setClearAndCountAcrossWordBoundaries() throws Exception {
        try (Metadata md = create(1)) {
            DirtyBitmap b = md.bitmap();
            assertEquals(71, b.setBits(0, 60, 131));
            assertEquals(0, b.setBits(0, 60, 131), "already set");
            assertEquals(71, b.dirtyBits(0));
            assertTrue(b.isDirty(0, 60) && b.isDirty(0, 63) && b.isDirty(0, 64) && b.isDirty(0, 130));
            assertFalse(b.isDirty(0, 59) || b.isDirty(0, 131));
            assertEquals(11, b.clearBits(0, 120, 140)); // 120..130 were set
            assertEquals(60, b.dirtyBits(0));
            assertEquals(2, b.setBits(0, 127, 129));
            assertEquals(62, b.dirtyBits(0));
            assertEquals(60, b.nextDirtyBit(0, 0));
            assertEquals(120, b.nextCleanBit(0, 60));
            assertEquals(127, b.nextDirtyBit(0, 120));
            assertEquals(-1, b.nextDirtyBit(0, 129));
            assertEquals(b.bits() - 1, b.nextCleanBit(0, b.bits() - 1));
        }
    }

    @Test
    @Timeout(10)
    void byteRangesRoundOutwardWhenSettingAndInwardWhenClearing() throws Exception {
        try (Metadata md = create(1)) {
            DirtyBitmap b = md.bitmap();
            assertEquals(3, b.set(0, 4095, 4098)); // touches blocks 0, 1, 2
            assertEquals(0, b.clear(0, 1, 8190)); // covers no whole block
            assertEquals(1, b.clear(0, 4096, 4096));
            assertEquals(2, b.dirtyBytes(0) / 4096);
            assertEquals(0, b.set(0, 8192, 0), "empty range");
        }
    }

    @Test
    @Timeout(10)
    void iteratesMaximalDirtyRangesIncludingTheLastBlock() throws Exception {
        try (Metadata md = create(1)) {
            DirtyBitmap b = md.bitmap();
            b.setBits(0, 0, 1);
            b.setBits(0, 63, 65);
            b.setBits(0, 32500, 32600); // across the first bitmap block boundary
            b.setBits(0, b.bits() - 2, b.bits());
            List<long[]> r = ranges(b, 0);
            assertEquals(4, r.size());
            assertEquals(List.of(0L, 4096L), List.of(r.get(0)[0], r.get(0)[1]));
            assertEquals(List.of(63 * 4096L, 2 * 4096L), List.of(r.get(1)[0], r.get(1)[1]));
            assertEquals(List.of(32500 * 4096L, 100 * 4096L), List.of(r.get(2)[0], r.get(2)[1]));
            assertEquals(List.of(SIZE - md.geometry().mdSizeBytes() - 8192, 8192L), List.of(r.get(3)[0], r.get(3)[1]));
        }
    }

    @Test
    @Timeout(10)
    void bitsOfEverySlotPersistAcrossReopen() throws Exception {
        Path file = dir.resolve("r0.img");
        long bits;
        try (Metadata md = create(2)) {
            DirtyBitmap b = md.bitmap();
            bits = b.bits();
            b.setBits(0, 5, 70);
            b.setBits(0, 32511, 32513);
            b.setBits(1, bits - 64, bits);
            b.setAll(1);
            b.clearBits(1, 0, 1000);
        }
        try (Metadata md = MetaFiles.open(file)) {
            DirtyBitmap b = md.bitmap();
            assertEquals(65 + 2, b.dirtyBits(0));
            assertTrue(b.isDirty(0, 32511) && b.isDirty(0, 32512) && !b.isDirty(0, 32513));
            assertEquals(bits - 1000, b.dirtyBits(1));
            assertEquals(1000, b.nextDirtyBit(1, 0));
        }
    }

    @Test
    @Timeout(10)
    void flushWritesOnlyTheChangedBlocks() throws Exception {
        try (Metadata md = create(2)) {
            DirtyBitmap b = md.bitmap();
            long before = md.counters().bitmapBlocksWritten();
            b.setBits(1, 40000, 40001); // slot 1, block 1
            b.setBits(0, 0, 1); // slot 0, block 0
            assertEquals(2, b.unflushedBlocks());
            assertEquals(2, b.flush());
            assertEquals(0, b.flush(), "nothing changed since");
            b.setBits(1, 40000, 40001);
            assertEquals(0, b.unflushedBlocks(), "setting a set bit changes nothing");
            assertEquals(before + 2, md.counters().bitmapBlocksWritten());
        }
    }

    @Test
    @Timeout(10)
    void corruptBitmapBlockFailsOpenNamingBlockAndOffset() throws Exception {
        Path file = dir.resolve("r0.img");
        MetadataGeometry g;
        try (Metadata md = create(2)) {
            g = md.geometry();
            md.bitmap().setBits(1, 40000, 40010);
        }
        long block = g.bitmapBlockNumber(1, 1);
        long offset = g.blockOffset(block);
        MetaFiles.flipByte(file, offset + 1000);
        MetadataException e = assertThrows(MetadataException.class, () -> MetaFiles.open(file));
        assertEquals(MetadataException.Kind.CORRUPT, e.kind());
        assertEquals(offset, e.offsetBytes());
        assertEquals(offset / 4096, e.blockNumber());
        String m = e.getMessage();
        assertTrue(m.contains("block " + offset / 4096 + " (bitmap block (peer slot 1, index 1)) at offset " + offset), m);
        assertTrue(m.contains("CRC32C mismatch") && m.contains(file.toString()), m);
    }

    @Test
    @Timeout(10)
    void misplacedBitmapBlockWithValidCrcIsCorrupt() throws Exception {
        Path file = dir.resolve("r0.img");
        MetadataGeometry g;
        try (Metadata md = create(2)) {
            g = md.geometry();
        }
        // copy slot 0's block 0 over slot 1's block 0: intact, but in the wrong place
        byte[] block = MetaFiles.read(file, g.blockOffset(g.bitmapBlockNumber(0, 0)), 4096);
        MetaFiles.write(file, g.blockOffset(g.bitmapBlockNumber(1, 0)), block);
        MetadataException e = assertThrows(MetadataException.class, () -> MetaFiles.open(file));
        assertTrue(e.getMessage().contains("holds peer slot 0 index 0 where slot 1 index 0 belongs"), e.getMessage());
    }

    @Test
    @Timeout(10)
    void tornBitmapBlockAfterCrashMarksItsWholeRangeOutOfSync() throws Exception {
        Path file = dir.resolve("r0.img");
        Metadata md = create(1);
        MetadataGeometry g = md.geometry();
        md.bitmap().setBits(0, 32512 + 7, 32512 + 9);
        md.flush();
        MetaFiles.crash(md);
        long offset = g.blockOffset(g.bitmapBlockNumber(0, 1));
        MetaFiles.tearSecondHalf(file, offset);
        try (Metadata reopened = MetaFiles.open(file)) {
            DirtyBitmap b = reopened.bitmap();
            assertEquals(32512, b.dirtyBits(0), "all of block 1, a superset of what it held");
            assertEquals(32512, b.nextDirtyBit(0, 0));
            assertEquals(65024, b.nextCleanBit(0, 32512));
            assertEquals(1, reopened.openReport().warnings().size());
            assertTrue(reopened.openReport().warnings().get(0).contains("at offset " + offset));
        }
        try (Metadata reopened = MetaFiles.open(file)) {
            assertTrue(reopened.openReport().warnings().isEmpty(), "rewritten at open");
            assertEquals(32512, reopened.bitmap().dirtyBits(0));
        }
    }
}
