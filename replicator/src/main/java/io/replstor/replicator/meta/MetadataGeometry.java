package io.replstor.replicator.meta;

import static io.replstor.replicator.meta.MetaBlock.BLOCK_SIZE;

/**
 * Everything about a volume's metadata that is fixed at create-md: identity (resource, node id),
 * sizes, and where each block lives.
 *
 * <h2>Placement</h2>
 * The metadata area always occupies the end of the device that holds it, 4 KiB aligned: with
 * internal metadata that is the backing device (the data area is everything before it), with
 * external metadata a separate file or device (the whole backing device is data). Because the two
 * superblock copies are the last two blocks of the area, a reader finds them from the device size
 * alone, and learns the rest of the layout from them.
 *
 * <h2>Blocks in the area (block number 0 = lowest offset)</h2>
 * <pre>
 * [0, P*B)            bitmaps: peer slot s, block i is block s*B + i     P = max-peers, B = bitmap
 *                                                                        blocks per slot
 * [P*B, P*B + R)      activity-log ring, R blocks                        R = al ring blocks
 * P*B + R             superblock copy A
 * P*B + R + 1         superblock copy B (the last 4 KiB of the device, rounded down to 4 KiB)
 * </pre>
 *
 * <h2>Size</h2>
 * {@code size = 4 KiB * (2 + R + P * ceil(ceil(data / 4 KiB) / 32512))}: one bit per 4 KiB, 32512
 * bits (508 words) per bitmap block, i.e. about 32 KiB per GiB of data per peer slot, plus 8 KiB of
 * superblocks and the 32 KiB default ring; DRBD's rule of thumb is the same 32 KiB per GiB per peer.
 * For internal metadata the bitmap is sized for the whole device (the data area is slightly smaller),
 * so the size depends on the device size only:
 * {@code data = floor4K(device) - size(floor4K(device))}.
 *
 * @param mdDeviceSizeBytes the size, rounded down to 4 KiB, of the device holding the metadata when
 *                          it was created; a different size on open means the device was resized
 */
public record MetadataGeometry(String resourceName, int nodeId, boolean external, long mdDeviceSizeBytes,
                               long mdOffsetBytes, long mdSizeBytes, long dataSizeBytes, int maxPeers,
                               int bitmapGranularityBytes, int bitmapBlocksPerSlot, int alExtentSizeBytes,
                               int alExtents, int alRingBlocks) {

    public static final int MAX_PEERS = 31;
    public static final int MAX_NODE_ID = 31;
    public static final int BITMAP_GRANULARITY_BYTES = 4096;
    public static final int DEFAULT_AL_EXTENT_SIZE_BYTES = 4 << 20;
    public static final int MIN_AL_EXTENT_SIZE_BYTES = 64 * BITMAP_GRANULARITY_BYTES;
    public static final int MAX_AL_EXTENT_SIZE_BYTES = 1 << 30;
    public static final int DEFAULT_AL_EXTENTS = 1237;
    public static final int MIN_AL_EXTENTS = 7;
    public static final int MAX_AL_EXTENTS = 65534;
    public static final int DEFAULT_AL_RING_BLOCKS = 8;
    public static final int MIN_AL_RING_BLOCKS = 2;
    public static final int MAX_AL_RING_BLOCKS = 1024;
    /** Superblock copies at the end of the area. */
    static final int SUPERBLOCK_COPIES = 2;
    /** Extents are stored as u32; all ones means an empty slot. */
    static final long MAX_EXTENTS = 0xFFFF_FFFEL;

    public MetadataGeometry {
        CreateOptions.validateResourceName(resourceName);
        require(nodeId >= 0 && nodeId <= MAX_NODE_ID, "node id " + nodeId + " out of range 0.." + MAX_NODE_ID);
        require(maxPeers >= 1 && maxPeers <= MAX_PEERS, "max-peers " + maxPeers + " out of range 1.." + MAX_PEERS);
        require(bitmapGranularityBytes == BITMAP_GRANULARITY_BYTES,
                "bitmap granularity " + bitmapGranularityBytes + " (only " + BITMAP_GRANULARITY_BYTES
                        + " is supported)");
        validateActivityLog(alExtents, alRingBlocks, alExtentSizeBytes);
        require(dataSizeBytes >= BLOCK_SIZE && dataSizeBytes % BLOCK_SIZE == 0,
                "data size " + dataSizeBytes + " is not a positive multiple of 4 KiB");
        require(ceilDiv(dataSizeBytes, alExtentSizeBytes) <= MAX_EXTENTS,
                "data size " + dataSizeBytes + " has more activity-log extents than fit in 32 bits");
        require(bitmapBlocksPerSlot >= bitmapBlocksFor(dataSizeBytes),
                bitmapBlocksPerSlot + " bitmap blocks per slot cannot cover " + dataSizeBytes + " bytes");
        require(mdSizeBytes == areaBytes(bitmapBlocksPerSlot, maxPeers, alRingBlocks),
                "metadata size " + mdSizeBytes + " does not match the layout ("
                        + areaBytes(bitmapBlocksPerSlot, maxPeers, alRingBlocks) + ")");
        require(mdOffsetBytes >= 0 && mdOffsetBytes % BLOCK_SIZE == 0
                        && mdOffsetBytes + mdSizeBytes == mdDeviceSizeBytes,
                "metadata area [" + mdOffsetBytes + ", +" + mdSizeBytes + ") does not end the device of "
                        + mdDeviceSizeBytes + " bytes");
        require(external || mdOffsetBytes == dataSizeBytes,
                "internal metadata at " + mdOffsetBytes + " does not follow the data area of " + dataSizeBytes);
    }

    /** Internal metadata at the end of a backing device of {@code deviceSizeBytes}. */
    public static MetadataGeometry forInternal(CreateOptions o, long deviceSizeBytes) throws MetadataException {
        long device = floorBlock(deviceSizeBytes);
        long blocks = bitmapBlocksFor(device);
        long md = areaBytes(blocks, o.maxPeers(), o.alRingBlocks());
        if (device - md < BLOCK_SIZE) {
            throw new MetadataException(MetadataException.Kind.INVALID, "a device of " + deviceSizeBytes
                    + " bytes is too small for internal metadata of " + md + " bytes (max-peers " + o.maxPeers()
                    + ") plus at least 4 KiB of data");
        }
        return build(o, false, device, device - md, md, device - md, blocks);
    }

    /** External metadata at the end of {@code mdDeviceSizeBytes}; the whole backing device is data. */
    public static MetadataGeometry forExternal(CreateOptions o, long dataDeviceSizeBytes, long mdDeviceSizeBytes)
            throws MetadataException {
        long data = floorBlock(dataDeviceSizeBytes);
        if (data < BLOCK_SIZE) {
            throw new MetadataException(MetadataException.Kind.INVALID,
                    "a backing device of " + dataDeviceSizeBytes + " bytes holds no 4 KiB block of data");
        }
        long blocks = bitmapBlocksFor(data);
        long md = areaBytes(blocks, o.maxPeers(), o.alRingBlocks());
        long mdDevice = floorBlock(mdDeviceSizeBytes);
        if (mdDevice < md) {
            throw new MetadataException(MetadataException.Kind.INVALID, "the external metadata device has "
                    + mdDeviceSizeBytes + " bytes but " + md + " are needed for " + data + " bytes of data with max-peers "
                    + o.maxPeers());
        }
        return build(o, true, mdDevice, mdDevice - md, md, data, blocks);
    }

    private static MetadataGeometry build(CreateOptions o, boolean external, long mdDevice, long mdOffset, long md,
                                          long data, long bitmapBlocks) throws MetadataException {
        try {
            return new MetadataGeometry(o.resourceName(), o.nodeId(), external, mdDevice, mdOffset, md, data,
                    o.maxPeers(), BITMAP_GRANULARITY_BYTES, Math.toIntExact(bitmapBlocks), o.alExtentSizeBytes(),
                    o.alExtents(), o.alRingBlocks());
        } catch (IllegalArgumentException | ArithmeticException e) {
            throw new MetadataException(MetadataException.Kind.INVALID, "cannot lay out metadata for resource '"
                    + o.resourceName() + "': " + e.getMessage());
        }
    }

    /** Size of the metadata area for {@code dataBytes} of data (external metadata). */
    public static long metadataSizeBytes(long dataBytes, int maxPeers, int alRingBlocks) {
        return areaBytes(bitmapBlocksFor(floorBlock(dataBytes)), maxPeers, alRingBlocks);
    }

    static long areaBytes(long bitmapBlocksPerSlot, int maxPeers, int alRingBlocks) {
        return BLOCK_SIZE * (SUPERBLOCK_COPIES + alRingBlocks + maxPeers * bitmapBlocksPerSlot);
    }

    static long bitmapBlocksFor(long dataBytes) {
        return ceilDiv(ceilDiv(dataBytes, BITMAP_GRANULARITY_BYTES), DirtyBitmap.BITS_PER_BLOCK);
    }

    static void validateActivityLog(int alExtents, int alRingBlocks, int alExtentSizeBytes) {
        require(Integer.bitCount(alExtentSizeBytes) == 1 && alExtentSizeBytes >= MIN_AL_EXTENT_SIZE_BYTES
                        && alExtentSizeBytes <= MAX_AL_EXTENT_SIZE_BYTES,
                "al-extent size " + alExtentSizeBytes + " must be a power of two from " + MIN_AL_EXTENT_SIZE_BYTES
                        + " to " + MAX_AL_EXTENT_SIZE_BYTES);
        require(alRingBlocks >= MIN_AL_RING_BLOCKS && alRingBlocks <= MAX_AL_RING_BLOCKS,
                "activity-log ring of " + alRingBlocks + " blocks; allowed " + MIN_AL_RING_BLOCKS + ".."
                        + MAX_AL_RING_BLOCKS);
        int capacity = maxAlExtents(alRingBlocks);
        require(alExtents >= MIN_AL_EXTENTS && alExtents <= capacity,
                "al-extents " + alExtents + " out of range " + MIN_AL_EXTENTS + ".." + capacity + " (a ring of "
                        + alRingBlocks + " blocks restores at most " + capacity + " extents after a crash)");
    }

    /**
     * The most extents a ring of {@code alRingBlocks} can restore: every transaction carries a slice of
     * the whole extent table, and the newest R-1 blocks (the oldest may be torn) must cover it.
     */
    public static int maxAlExtents(int alRingBlocks) {
        return (int) Math.min(MAX_AL_EXTENTS, (long) ActivityLog.CONTEXT_SLOTS_PER_BLOCK * (alRingBlocks - 1));
    }

    /** Offset of superblock copy {@code copy} (0 = A, 1 = B) on a device of {@code mdDeviceSizeBytes}. */
    static long superblockOffset(long mdDeviceSizeBytes, int copy) {
        return floorBlock(mdDeviceSizeBytes) - (long) (SUPERBLOCK_COPIES - copy) * BLOCK_SIZE;
    }

    public long blockCount() {
        return mdSizeBytes / BLOCK_SIZE;
    }

    public long bitmapBits() {
        return dataSizeBytes / bitmapGranularityBytes;
    }

    public long alExtentCount() {
        return ceilDiv(dataSizeBytes, alExtentSizeBytes);
    }

    long bitmapBlockNumber(int slot, int index) {
        return (long) slot * bitmapBlocksPerSlot + index;
    }

    long alBlockNumber(int ringIndex) {
        return (long) maxPeers * bitmapBlocksPerSlot + ringIndex;
    }

    long superblockNumber(int copy) {
        return (long) maxPeers * bitmapBlocksPerSlot + alRingBlocks + copy;
    }

    public long blockOffset(long blockNumber) {
        return mdOffsetBytes + blockNumber * BLOCK_SIZE;
    }

    /** "bitmap block (peer slot 1, index 3)", "activity-log block 2 of 8", "superblock copy A". */
    public String describeBlock(long blockNumber) {
        long bitmapBlocks = (long) maxPeers * bitmapBlocksPerSlot;
        if (blockNumber < bitmapBlocks) {
            return "bitmap block (peer slot " + blockNumber / bitmapBlocksPerSlot + ", index "
                    + blockNumber % bitmapBlocksPerSlot + ")";
        }
        if (blockNumber < bitmapBlocks + alRingBlocks) {
            return "activity-log block " + (blockNumber - bitmapBlocks) + " of " + alRingBlocks;
        }
        return "superblock copy " + copyName((int) (blockNumber - bitmapBlocks - alRingBlocks));
    }

    static String copyName(int copy) {
        return copy == 0 ? "A" : "B";
    }

    static long floorBlock(long bytes) {
        return bytes - Math.floorMod(bytes, BLOCK_SIZE);
    }

    static long ceilDiv(long a, long b) {
        return -Math.floorDiv(-a, b);
    }

    private static void require(boolean ok, String what) {
        if (!ok) {
            throw new IllegalArgumentException(what);
        }
    }
}
