package io.replstor.replicator.meta;

import io.replstor.replicator.DiskState;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import static io.replstor.replicator.meta.MetaBlock.BLOCK_SIZE;
import static io.replstor.replicator.meta.MetaBlock.CRC_OFFSET;

/**
 * The superblock: geometry and persistent state in one {@link MetaBlock} of type 1, written in two
 * copies, A and B. Commit {@code n} goes to copy {@code n & 1} (A holds even transactions, B odd),
 * so a write torn by a crash damages only the copy being written and the other still holds the
 * previous commit; open uses the valid copy with the higher transaction number.
 *
 * <pre>
 * offset  size  field                         (big-endian; unused bytes are zero)
 *      0    16  block header (MetaBlock)      type 1; transaction = superblock commit sequence
 *     16     8  metadata device size          bytes, 4 KiB aligned, when created
 *     24     8  metadata offset               bytes, start of the area on that device
 *     32     8  metadata size                 bytes
 *     40     8  data size                     bytes, the usable volume size
 *     48     8  last agreed size              bytes
 *     56     1  placement                     0 internal, 1 external
 *     57     1  disk state                    0 Inconsistent, 1 Outdated, 2 Consistent, 3 UpToDate
 *     58     2  reserved
 *     60     4  node id                       signed
 *     64     4  max peers                     peer slots, 1..31
 *     68     4  bitmap granularity            bytes per bit, 4096
 *     72     4  bitmap blocks per slot
 *     76     4  al-extent size                bytes
 *     80     4  al-extents                    LRU slots
 *     84     4  al ring blocks
 *     88     4  volume flags                  VolumeFlag bits
 *     92     4  reserved
 *     96     8  current UUID
 *    104     2  resource name length          bytes of UTF-8, 1..62
 *    106    62  resource name                 zero padded
 *    168   256  history UUIDs                 32 x u64, newest first, 0 = empty
 *    424   496  peer slots                    31 x { i32 node id (-1 = unassigned), u32 PeerFlag bits,
 *                                                    u64 bitmap UUID }; slots >= max peers are unassigned
 *    920     8  data term                     the newest cluster-store term of any write this replica
 *                                             holds (0: none, or a cluster without a store)
 *    928  3164  reserved
 *   4092     4  CRC32C
 * </pre>
 */
final class Superblock {
    static final int MD_DEVICE_SIZE_OFFSET = 16;
    static final int MD_OFFSET_OFFSET = 24;
    static final int MD_SIZE_OFFSET = 32;
    static final int DATA_SIZE_OFFSET = 40;
    static final int LAST_AGREED_SIZE_OFFSET = 48;
    static final int PLACEMENT_OFFSET = 56;
    static final int DISK_STATE_OFFSET = 57;
    static final int RESERVED_58_OFFSET = 58;
    static final int NODE_ID_OFFSET = 60;
    static final int MAX_PEERS_OFFSET = 64;
    static final int BITMAP_GRANULARITY_OFFSET = 68;
    static final int BITMAP_BLOCKS_PER_SLOT_OFFSET = 72;
    static final int AL_EXTENT_SIZE_OFFSET = 76;
    static final int AL_EXTENTS_OFFSET = 80;
    static final int AL_RING_BLOCKS_OFFSET = 84;
    static final int VOLUME_FLAGS_OFFSET = 88;
    static final int RESERVED_92_OFFSET = 92;
    static final int CURRENT_UUID_OFFSET = 96;
    static final int RESOURCE_NAME_LENGTH_OFFSET = 104;
    static final int RESOURCE_NAME_OFFSET = 106;
    static final int RESOURCE_NAME_MAX_BYTES = 62;
    static final int HISTORY_OFFSET = RESOURCE_NAME_OFFSET + RESOURCE_NAME_MAX_BYTES;
    static final int PEER_SLOTS_OFFSET = HISTORY_OFFSET + GenerationUuids.HISTORY_UUIDS * Long.BYTES;
    static final int PEER_SLOT_LENGTH = 16;
    static final int PEER_NODE_ID_OFFSET = 0;
    static final int PEER_FLAGS_OFFSET = 4;
    static final int PEER_BITMAP_UUID_OFFSET = 8;
    static final int DATA_TERM_OFFSET = PEER_SLOTS_OFFSET + MetadataGeometry.MAX_PEERS * PEER_SLOT_LENGTH;
    static final int FIELDS_END = DATA_TERM_OFFSET + Long.BYTES;

    static final int PLACEMENT_INTERNAL = 0;
    static final int PLACEMENT_EXTERNAL = 1;

    /** A decoded superblock copy. */
    record Contents(MetadataGeometry geometry, PersistentState state, long transaction) {
    }

    private Superblock() {
    }

    static byte[] encode(MetadataGeometry g, PersistentState s, long transaction) {
        byte[] block = new byte[BLOCK_SIZE];
        ByteBuffer b = ByteBuffer.wrap(block);
        b.putLong(MD_DEVICE_SIZE_OFFSET, g.mdDeviceSizeBytes());
        b.putLong(MD_OFFSET_OFFSET, g.mdOffsetBytes());
        b.putLong(MD_SIZE_OFFSET, g.mdSizeBytes());
        b.putLong(DATA_SIZE_OFFSET, g.dataSizeBytes());
        b.putLong(LAST_AGREED_SIZE_OFFSET, s.lastAgreedSizeBytes());
        b.put(PLACEMENT_OFFSET, (byte) (g.external() ? PLACEMENT_EXTERNAL : PLACEMENT_INTERNAL));
        b.put(DISK_STATE_OFFSET, (byte) s.diskState().persistedCode());
        b.putInt(NODE_ID_OFFSET, g.nodeId());
        b.putInt(MAX_PEERS_OFFSET, g.maxPeers());
        b.putInt(BITMAP_GRANULARITY_OFFSET, g.bitmapGranularityBytes());
        b.putInt(BITMAP_BLOCKS_PER_SLOT_OFFSET, g.bitmapBlocksPerSlot());
        b.putInt(AL_EXTENT_SIZE_OFFSET, g.alExtentSizeBytes());
        b.putInt(AL_EXTENTS_OFFSET, g.alExtents());
        b.putInt(AL_RING_BLOCKS_OFFSET, g.alRingBlocks());
        b.putInt(VOLUME_FLAGS_OFFSET, VolumeFlag.encode(s.flags()));
        b.putLong(CURRENT_UUID_OFFSET, s.uuids().current());
        b.putLong(DATA_TERM_OFFSET, s.dataTerm());
        byte[] name = g.resourceName().getBytes(StandardCharsets.UTF_8);
        b.putShort(RESOURCE_NAME_LENGTH_OFFSET, (short) name.length);
        b.put(RESOURCE_NAME_OFFSET, name);
        List<Long> history = s.uuids().history();
        for (int i = 0; i < history.size(); i++) {
            b.putLong(HISTORY_OFFSET + i * Long.BYTES, history.get(i));
        }
        for (int slot = 0; slot < MetadataGeometry.MAX_PEERS; slot++) {
            int at = PEER_SLOTS_OFFSET + slot * PEER_SLOT_LENGTH;
            PeerSlot p = slot < s.peers().size() ? s.peers().get(slot) : PeerSlot.unassigned();
            b.putInt(at + PEER_NODE_ID_OFFSET, p.nodeId());
            b.putInt(at + PEER_FLAGS_OFFSET, PeerFlag.encode(p.flags()));
            b.putLong(at + PEER_BITMAP_UUID_OFFSET, slot < s.peers().size() ? s.uuids().bitmapUuid(slot) : 0);
        }
        MetaBlock.seal(b, 0, MetaBlock.TYPE_SUPERBLOCK, transaction);
        return block;
    }

    /**
     * Decodes a copy whose frame {@link MetaBlock#check} found valid.
     *
     * @throws IllegalArgumentException naming the field that makes no sense
     */
    static Contents decode(ByteBuffer b, int base) {
        int placement = b.get(base + PLACEMENT_OFFSET);
        if (placement != PLACEMENT_INTERNAL && placement != PLACEMENT_EXTERNAL) {
            throw new IllegalArgumentException("placement " + placement + " is neither internal (0) nor external (1)");
        }
        int diskCode = b.get(base + DISK_STATE_OFFSET);
        DiskState disk = DiskState.fromPersistedCode(diskCode);
        if (disk == null) {
            throw new IllegalArgumentException("disk state code " + diskCode + " is unknown");
        }
        if (b.getShort(base + RESERVED_58_OFFSET) != 0 || b.getInt(base + RESERVED_92_OFFSET) != 0
                || !zero(b, base + FIELDS_END, base + CRC_OFFSET)) {
            throw new IllegalArgumentException("reserved bytes are not zero");
        }
        int nameLength = Short.toUnsignedInt(b.getShort(base + RESOURCE_NAME_LENGTH_OFFSET));
        if (nameLength < 1 || nameLength > RESOURCE_NAME_MAX_BYTES
                || !zero(b, base + RESOURCE_NAME_OFFSET + nameLength, base + HISTORY_OFFSET)) {
            throw new IllegalArgumentException("resource name length " + nameLength + " is out of range 1.."
                    + RESOURCE_NAME_MAX_BYTES + " or the name is not zero padded");
        }
        byte[] name = new byte[nameLength];
        b.get(base + RESOURCE_NAME_OFFSET, name);
        MetadataGeometry g = new MetadataGeometry(new String(name, StandardCharsets.UTF_8),
                b.getInt(base + NODE_ID_OFFSET), placement == PLACEMENT_EXTERNAL,
                b.getLong(base + MD_DEVICE_SIZE_OFFSET), b.getLong(base + MD_OFFSET_OFFSET),
                b.getLong(base + MD_SIZE_OFFSET), b.getLong(base + DATA_SIZE_OFFSET),
                b.getInt(base + MAX_PEERS_OFFSET), b.getInt(base + BITMAP_GRANULARITY_OFFSET),
                b.getInt(base + BITMAP_BLOCKS_PER_SLOT_OFFSET), b.getInt(base + AL_EXTENT_SIZE_OFFSET),
                b.getInt(base + AL_EXTENTS_OFFSET), b.getInt(base + AL_RING_BLOCKS_OFFSET));
        long[] history = new long[GenerationUuids.HISTORY_UUIDS];
        for (int i = 0; i < history.length; i++) {
            history[i] = b.getLong(base + HISTORY_OFFSET + i * Long.BYTES);
        }
        long[] bitmapUuids = new long[g.maxPeers()];
        List<PeerSlot> peers = new ArrayList<>(g.maxPeers());
        for (int slot = 0; slot < MetadataGeometry.MAX_PEERS; slot++) {
            int at = base + PEER_SLOTS_OFFSET + slot * PEER_SLOT_LENGTH;
            int node = b.getInt(at + PEER_NODE_ID_OFFSET);
            int flags = b.getInt(at + PEER_FLAGS_OFFSET);
            long bitmapUuid = b.getLong(at + PEER_BITMAP_UUID_OFFSET);
            if (slot < g.maxPeers()) {
                peers.add(new PeerSlot(node, PeerFlag.decode(flags)));
                bitmapUuids[slot] = bitmapUuid;
            } else if (node != PeerSlot.UNASSIGNED || flags != 0 || bitmapUuid != 0) {
                throw new IllegalArgumentException("peer slot " + slot + " is in use beyond max-peers " + g.maxPeers());
            }
        }
        if (peers.stream().anyMatch(p -> p.nodeId() == g.nodeId())) {
            throw new IllegalArgumentException("a peer slot holds this node's own id " + g.nodeId());
        }
        PersistentState s = new PersistentState(disk, VolumeFlag.decode(b.getInt(base + VOLUME_FLAGS_OFFSET)),
                new GenerationUuids(b.getLong(base + CURRENT_UUID_OFFSET), bitmapUuids, history), peers,
                b.getLong(base + LAST_AGREED_SIZE_OFFSET), b.getLong(base + DATA_TERM_OFFSET));
        return new Contents(g, s, MetaBlock.transaction(b, base));
    }

    private static boolean zero(ByteBuffer b, int from, int to) {
        for (int i = from; i < to; i++) {
            if (b.get(i) != 0) {
                return false;
            }
        }
        return true;
    }
}
