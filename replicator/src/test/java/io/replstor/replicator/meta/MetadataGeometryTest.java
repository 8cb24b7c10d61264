package io.replstor.replicator.meta;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MetadataGeometryTest {
    private static final long GIB = 1L << 30;

    @Test
    @Timeout(5)
    void internalMetadataOfOneGibWithOnePeerIsAboutFortyKib() throws Exception {
        MetadataGeometry g = MetadataGeometry.forInternal(CreateOptions.of("r0", 0), GIB);
        // 262144 bits -> 9 bitmap blocks; + 8 ring blocks + 2 superblocks
        assertEquals(9, g.bitmapBlocksPerSlot());
        assertEquals(4096L * (2 + 8 + 9), g.mdSizeBytes());
        assertEquals(GIB - g.mdSizeBytes(), g.dataSizeBytes());
        assertEquals(g.dataSizeBytes(), g.mdOffsetBytes());
        assertEquals(GIB, g.mdOffsetBytes() + g.mdSizeBytes());
    }

    @Test
    @Timeout(5)
    void sizeGrowsAboutThirtyTwoKibPerGibPerPeerSlot() throws Exception {
        long tib = 1024 * GIB;
        MetadataGeometry one = MetadataGeometry.forInternal(CreateOptions.of("r0", 0), tib);
        MetadataGeometry three = MetadataGeometry.forInternal(CreateOptions.of("r0", 0).withMaxPeers(3), tib);
        long perSlot = three.mdSizeBytes() - one.mdSizeBytes();
        assertEquals(2 * 4096L * 8257, perSlot); // ceil(2^28 bits / 32512) = 8257 blocks per slot
        double kibPerGib = perSlot / 2.0 / 1024 / 1024;
        assertTrue(kibPerGib > 32 && kibPerGib < 33, "KiB per GiB per peer: " + kibPerGib);
    }

    @Test
    @Timeout(5)
    void unalignedDeviceSizeIsRoundedDownToFourKib() throws Exception {
        MetadataGeometry g = MetadataGeometry.forInternal(CreateOptions.of("r0", 0), 64 * 1048576L + 1000);
        assertEquals(0, g.dataSizeBytes() % 4096);
        assertEquals(64 * 1048576L, g.mdDeviceSizeBytes());
        assertEquals(64 * 1048576L - 4096, MetadataGeometry.superblockOffset(64 * 1048576L + 1000, 1));
    }

    @Test
    @Timeout(5)
    void externalMetadataUsesTheWholeBackingDeviceAndNeedsRoomForTheArea() throws Exception {
        long need = MetadataGeometry.metadataSizeBytes(GIB, 2, 8);
        MetadataGeometry g = MetadataGeometry.forExternal(CreateOptions.of("r0", 0).withMaxPeers(2), GIB, need);
        assertEquals(GIB, g.dataSizeBytes());
        assertEquals(0, g.mdOffsetBytes());
        MetadataException e = assertThrows(MetadataException.class, () -> MetadataGeometry
                .forExternal(CreateOptions.of("r0", 0).withMaxPeers(2), GIB, need - 4096));
        assertEquals(MetadataException.Kind.INVALID, e.kind());
    }

    @Test
    @Timeout(5)
    void tooSmallDeviceIsRefused() {
        MetadataException e = assertThrows(MetadataException.class,
                () -> MetadataGeometry.forInternal(CreateOptions.of("r0", 0), 40 * 1024));
        assertTrue(e.getMessage().contains("too small"), e.getMessage());
    }

    @Test
    @Timeout(5)
    void alExtentsAreLimitedByWhatTheRingCanRestore() {
        assertEquals(887 * 7, MetadataGeometry.maxAlExtents(8));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> CreateOptions.of("r0", 0).withAlExtents(1000).withAlRingBlocks(2));
        assertTrue(e.getMessage().contains("al-extents 1000"), e.getMessage());
    }

    @Test
    @Timeout(5)
    void blocksAreNamedByTheirRole() throws Exception {
        MetadataGeometry g = MetadataGeometry.forInternal(CreateOptions.of("r0", 0).withMaxPeers(2), GIB);
        assertEquals("bitmap block (peer slot 1, index 3)", g.describeBlock(g.bitmapBlockNumber(1, 3)));
        assertEquals("activity-log block 2 of 8", g.describeBlock(g.alBlockNumber(2)));
        assertEquals("superblock copy B", g.describeBlock(g.superblockNumber(1)));
        assertEquals(GIB - 4096, g.blockOffset(g.superblockNumber(1)));
    }
}
