package io.replstor.replicator.meta;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.concurrent.locks.ReentrantLock;

import static io.replstor.replicator.meta.MetaBlock.BLOCK_SIZE;

/**
 * The out-of-sync bitmaps, one per peer slot: bit {@code b} set in slot {@code s} means the 4 KiB
 * block at byte {@code b * 4096} may differ between this node and that peer. Held in memory as
 * {@code long} words; persisted as bitmap blocks, writing only the blocks that changed since the
 * last {@link #flush()}.
 *
 * <h2>Bitmap block ({@link MetaBlock} type 3)</h2>
 * <pre>
 * offset  size  field
 *      0    16  block header         transaction = bitmap flush sequence (1 at create-md, +1 per flush
 *                                    that wrote something; all blocks of one flush share it)
 *     16     2  peer slot            must match the block's place in the area
 *     18     2  reserved
 *     20     4  block index          within the slot; must match the block's place
 *     24  4064  508 words            u64 each; bit i (LSB = 0) of word w is bitmap bit
 *                                    index * 32512 + w * 64 + i; bits past the data size are 0
 *   4088     4  reserved
 *   4092     4  CRC32C
 * </pre>
 *
 * <h2>Torn blocks</h2>
 * Bitmap blocks are overwritten in place, so a crash during a flush can tear one: its CRC fails.
 * After an unclean shutdown (no {@link VolumeFlag#AL_CLEAN}) such a block is not used: its whole
 * range is marked out of sync instead (a superset of whatever it held, so at worst more is
 * resynced), rewritten at the next flush, and reported as a warning. After a clean shutdown every
 * flush had completed, so a bad block is corruption and open fails naming it.
 *
 * <p>Thread safety: mutations and queries lock this object; {@link #flush} encodes under that lock,
 * one chunk at a time, and writes outside it; flushes are serialized among themselves so an older
 * image of a block can never overwrite a newer one.
 */
public final class DirtyBitmap {
    static final int SLOT_OFFSET = 16;
    static final int RESERVED_18_OFFSET = 18;
    static final int INDEX_OFFSET = 20;
    static final int WORDS_OFFSET = 24;
    static final int WORDS_PER_BLOCK = 508;
    static final int BITS_PER_BLOCK = WORDS_PER_BLOCK * Long.SIZE;
    static final int RESERVED_4088_OFFSET = WORDS_OFFSET + WORDS_PER_BLOCK * Long.BYTES;
    private static final Logger LOG = LoggerFactory.getLogger(DirtyBitmap.class);

    /** Receives one run of out-of-sync bytes. */
    @FunctionalInterface
    public interface DirtyRangeVisitor {
        /** @return true to receive the next range */
        boolean range(long offsetBytes, long lengthBytes);
    }

    private final MetadataGeometry geometry;
    private final MetaIo io;
    private final long bits;
    private final int wordsInUse;
    private final long[][] words;
    private final long[] dirtyBits;
    private final BitSet[] unflushed;
    private final ReentrantLock flushLock = new ReentrantLock();
    private long flushSequence;

    private DirtyBitmap(MetadataGeometry geometry, MetaIo io, long flushSequence) {
        this.geometry = geometry;
        this.io = io;
        this.bits = geometry.bitmapBits();
        this.wordsInUse = Math.toIntExact(MetadataGeometry.ceilDiv(bits, Long.SIZE));
        int wordsPerSlot = Math.multiplyExact(geometry.bitmapBlocksPerSlot(), WORDS_PER_BLOCK);
        this.words = new long[geometry.maxPeers()][wordsPerSlot];
        this.dirtyBits = new long[geometry.maxPeers()];
        this.unflushed = new BitSet[geometry.maxPeers()];
        for (int s = 0; s < unflushed.length; s++) {
            unflushed[s] = new BitSet(geometry.bitmapBlocksPerSlot());
        }
        this.flushSequence = flushSequence;
    }

    /** create-md: writes every bitmap block of every slot, empty, with flush sequence 1 (no sync). */
    static void format(MetadataGeometry g, MetaIo io) throws IOException {
        DirtyBitmap b = new DirtyBitmap(g, io, 0);
        for (BitSet u : b.unflushed) {
            u.set(0, g.bitmapBlocksPerSlot());
        }
        b.writeUnflushed(0, g.bitmapBlocksPerSlot(), 1);
    }

    /**
     * Reads every bitmap block.
     *
     * @param afterUncleanShutdown tolerate CRC failures as torn writes (see the class comment)
     * @param warnings receives one line per block replaced by an all-dirty range
     */
    static DirtyBitmap load(MetadataGeometry g, MetaIo io, boolean afterUncleanShutdown, List<String> warnings)
            throws IOException {
        DirtyBitmap b = new DirtyBitmap(g, io, 0);
        long newest = 0;
        for (int slot = 0; slot < g.maxPeers(); slot++) {
            for (int first = 0; first < g.bitmapBlocksPerSlot(); first += MetaIo.MAX_BLOCKS_PER_IO) {
                int n = Math.min(MetaIo.MAX_BLOCKS_PER_IO, g.bitmapBlocksPerSlot() - first);
                ByteBuffer buf = io.read(g.blockOffset(g.bitmapBlockNumber(slot, first)), n);
                for (int i = 0; i < n; i++) {
                    long txn = b.loadBlock(slot, first + i, buf, i * BLOCK_SIZE, afterUncleanShutdown, warnings);
                    newest = Math.max(newest, txn);
                }
            }
        }
        b.flushSequence = newest;
        return b;
    }

    /** @return the block's transaction number, or 0 if it was replaced */
    private long loadBlock(int slot, int index, ByteBuffer buf, int base, boolean tolerateTorn, List<String> warnings)
            throws MetadataException {
        long blockNumber = geometry.bitmapBlockNumber(slot, index);
        BlockCheck check = MetaBlock.check(buf, base, MetaBlock.TYPE_BITMAP);
        if (check.valid()) {
            check = checkContent(slot, index, buf, base);
        }
        if (check.valid()) {
            int w0 = index * WORDS_PER_BLOCK;
            for (int w = 0; w < WORDS_PER_BLOCK; w++) {
                long word = buf.getLong(base + WORDS_OFFSET + w * Long.BYTES);
                words[slot][w0 + w] = word;
                dirtyBits[slot] += Long.bitCount(word);
            }
            return check.transaction();
        }
        if (tolerateTorn && check.reason() == BlockCheck.Reason.BAD_CRC) {
            long from = (long) index * BITS_PER_BLOCK;
            long to = Math.min(bits, from + BITS_PER_BLOCK);
            if (from < to) {
                apply(slot, from, to, true);
            }
            unflushed[slot].set(index);
            String w = "block " + blockNumber + " (" + geometry.describeBlock(blockNumber) + ") at offset "
                    + geometry.blockOffset(blockNumber) + " is torn (" + check.detail()
                    + ") after an unclean shutdown; its range is marked out of sync for peer slot " + slot;
            LOG.warn("{}: {}", io.disk().describe(), w);
            warnings.add(w);
            return 0;
        }
        throw Metadata.corrupt(io.disk(), geometry, blockNumber, check);
    }

    private BlockCheck checkContent(int slot, int index, ByteBuffer buf, int base) {
        int storedSlot = Short.toUnsignedInt(buf.getShort(base + SLOT_OFFSET));
        long storedIndex = Integer.toUnsignedLong(buf.getInt(base + INDEX_OFFSET));
        long txn = MetaBlock.transaction(buf, base);
        if (storedSlot != slot || storedIndex != index) {
            return BlockCheck.of(BlockCheck.Reason.BAD_CONTENT, txn, "holds peer slot " + storedSlot + " index "
                    + storedIndex + " where slot " + slot + " index " + index + " belongs");
        }
        if (buf.getShort(base + RESERVED_18_OFFSET) != 0 || buf.getInt(base + RESERVED_4088_OFFSET) != 0) {
            return BlockCheck.of(BlockCheck.Reason.BAD_CONTENT, txn, "reserved bytes are not zero");
        }
        long firstBit = (long) index * BITS_PER_BLOCK;
        for (int w = 0; w < WORDS_PER_BLOCK; w++) {
            long word = buf.getLong(base + WORDS_OFFSET + w * Long.BYTES);
            long wordBit = firstBit + (long) w * Long.SIZE;
            long valid = wordBit >= bits ? 0 : bits - wordBit >= Long.SIZE ? -1L : (1L << (bits - wordBit)) - 1;
            if ((word & ~valid) != 0) {
                return BlockCheck.of(BlockCheck.Reason.BAD_CONTENT, txn, "bits set past the end of the data ("
                        + bits + " bits)");
            }
        }
        return BlockCheck.ok(txn);
    }

    public int slots() {
        return words.length;
    }

    /** Bits per slot: the data size in 4 KiB blocks. */
    public long bits() {
        return bits;
    }

    public int granularityBytes() {
        return geometry.bitmapGranularityBytes();
    }

    /** Marks the 4 KiB blocks touched by the byte range (rounded outward). @return bits newly set */
    public long set(int slot, long offsetBytes, long lengthBytes) {
        long g = granularityBytes();
        checkBytes(offsetBytes, lengthBytes);
        if (lengthBytes == 0) {
            return 0;
        }
        return setBits(slot, offsetBytes / g, MetadataGeometry.ceilDiv(offsetBytes + lengthBytes, g));
    }

    /**
     * Clears the 4 KiB blocks wholly inside the byte range (rounded inward: a partly covered block
     * may still differ). @return bits newly cleared
     */
    public long clear(int slot, long offsetBytes, long lengthBytes) {
        long g = granularityBytes();
        checkBytes(offsetBytes, lengthBytes);
        long from = MetadataGeometry.ceilDiv(offsetBytes, g);
        long to = (offsetBytes + lengthBytes) / g;
        return to > from ? clearBits(slot, from, to) : 0;
    }

    /** Sets bits {@code [fromBit, toBit)}. @return bits newly set */
    public synchronized long setBits(int slot, long fromBit, long toBit) {
        checkBits(slot, fromBit, toBit);
        return fromBit == toBit ? 0 : apply(slot, fromBit, toBit, true);
    }

    /** Clears bits {@code [fromBit, toBit)}. @return bits newly cleared */
    public synchronized long clearBits(int slot, long fromBit, long toBit) {
        checkBits(slot, fromBit, toBit);
        return fromBit == toBit ? 0 : apply(slot, fromBit, toBit, false);
    }

    /** The whole volume out of sync with this slot's peer (full sync). */
    public long setAll(int slot) {
        return setBits(slot, 0, bits);
    }

    public long clearAll(int slot) {
        return clearBits(slot, 0, bits);
    }

    public synchronized boolean isDirty(int slot, long bit) {
        checkBits(slot, bit, bit + 1);
        return (words[slot][(int) (bit >>> 6)] & (1L << bit)) != 0;
    }

    /** Set bits of the slot; kept as a count, so this is O(1). */
    public synchronized long dirtyBits(int slot) {
        checkSlot(slot);
        return dirtyBits[slot];
    }

    public long dirtyBytes(int slot) {
        return dirtyBits(slot) * granularityBytes();
    }

    /** The first set bit at or after {@code fromBit}, or -1. */
    public synchronized long nextDirtyBit(int slot, long fromBit) {
        checkSlot(slot);
        return nextBit(words[slot], fromBit, false);
    }

    /** The first clear bit at or after {@code fromBit}, or {@link #bits()} if none. */
    public synchronized long nextCleanBit(int slot, long fromBit) {
        checkSlot(slot);
        long b = nextBit(words[slot], fromBit, true);
        return b < 0 ? bits : b;
    }

    /**
     * Visits the out-of-sync byte ranges of the slot in ascending order, each maximal. The view is
     * weakly consistent: each range is computed under the lock, the visitor runs outside it.
     */
    public void forEachDirtyRange(int slot, DirtyRangeVisitor visitor) {
        long g = granularityBytes();
        long pos = 0;
        while (pos < bits) {
            long start;
            long end;
            synchronized (this) {
                start = nextBit(words[slot], pos, false);
                if (start < 0) {
                    return;
                }
                end = nextBit(words[slot], start, true);
                end = end < 0 ? bits : end;
            }
            if (!visitor.range(start * g, (end - start) * g)) {
                return;
            }
            pos = end;
        }
    }

    /** Bitmap blocks changed in memory and not yet written. */
    public synchronized int unflushedBlocks() {
        int n = 0;
        for (BitSet u : unflushed) {
            n += u.cardinality();
        }
        return n;
    }

    /** The flush sequence of the newest bitmap block on disk. */
    public long flushSequence() {
        flushLock.lock();
        try {
            return flushSequence;
        } finally {
            flushLock.unlock();
        }
    }

    /** Writes every changed block and syncs. @return blocks written (0: nothing to do, no sync) */
    public int flush() throws IOException {
        return flushBlocks(0, geometry.bitmapBlocksPerSlot());
    }

    /** Writes and syncs the changed blocks, of every slot, that cover bytes {@code [offset, offset+length)}. */
    public int flushRange(long offsetBytes, long lengthBytes) throws IOException {
        checkBytes(offsetBytes, lengthBytes);
        if (lengthBytes == 0) {
            return 0;
        }
        long g = granularityBytes();
        long firstBit = offsetBytes / g;
        long lastBit = Math.min(bits, MetadataGeometry.ceilDiv(offsetBytes + lengthBytes, g)) - 1;
        return flushBlocks((int) (firstBit / BITS_PER_BLOCK), (int) (lastBit / BITS_PER_BLOCK) + 1);
    }

    private int flushBlocks(int fromBlock, int toBlock) throws IOException {
        flushLock.lock();
        try {
            return writeUnflushed(fromBlock, toBlock, flushSequence + 1);
        } finally {
            flushLock.unlock();
        }
    }

    /** Caller holds {@link #flushLock} (or owns the only reference). */
    private int writeUnflushed(int fromBlock, int toBlock, long sequence) throws IOException {
        List<long[]> runs = new ArrayList<>();
        try {
            for (int slot = 0; slot < words.length; slot++) {
                int next = fromBlock;
                while (true) {
                    byte[] chunk;
                    int first;
                    int n;
                    synchronized (this) {
                        first = unflushed[slot].nextSetBit(next);
                        if (first < 0 || first >= toBlock) {
                            break;
                        }
                        n = 1;
                        while (n < MetaIo.MAX_BLOCKS_PER_IO && first + n < toBlock && unflushed[slot].get(first + n)) {
                            n++;
                        }
                        chunk = encode(slot, first, n, sequence);
                        unflushed[slot].clear(first, first + n);
                    }
                    runs.add(new long[] {slot, first, n});
                    io.write(geometry.blockOffset(geometry.bitmapBlockNumber(slot, first)), chunk, 0, chunk.length);
                    next = first + n;
                }
            }
            if (runs.isEmpty()) {
                return 0;
            }
            io.sync("bitmap");
        } catch (IOException | RuntimeException e) {
            synchronized (this) {
                for (long[] r : runs) {
                    unflushed[(int) r[0]].set((int) r[1], (int) (r[1] + r[2]));
                }
            }
            throw e;
        }
        int written = runs.stream().mapToInt(r -> (int) r[2]).sum();
        flushSequence = sequence;
        io.counters().bitmapBlocksWritten.add(written);
        return written;
    }

    /** Caller holds the lock. */
    private byte[] encode(int slot, int firstIndex, int n, long sequence) {
        byte[] chunk = new byte[n * BLOCK_SIZE];
        ByteBuffer b = ByteBuffer.wrap(chunk);
        for (int i = 0; i < n; i++) {
            int base = i * BLOCK_SIZE;
            int index = firstIndex + i;
            b.putShort(base + SLOT_OFFSET, (short) slot);
            b.putInt(base + INDEX_OFFSET, index);
            int w0 = index * WORDS_PER_BLOCK;
            for (int w = 0; w < WORDS_PER_BLOCK; w++) {
                b.putLong(base + WORDS_OFFSET + w * Long.BYTES, words[slot][w0 + w]);
            }
            MetaBlock.seal(b, base, MetaBlock.TYPE_BITMAP, sequence);
        }
        return chunk;
    }

    /** Caller holds the lock; {@code from < to}. @return bits changed */
    private long apply(int slot, long from, long to, boolean set) {
        long[] w = words[slot];
        int first = (int) (from >>> 6);
        int last = (int) ((to - 1) >>> 6);
        long changed = 0;
        for (int i = first; i <= last; i++) {
            long mask = -1L;
            if (i == first) {
                mask &= -1L << from;
            }
            if (i == last) {
                mask &= -1L >>> (63 - ((to - 1) & 63));
            }
            long old = w[i];
            long now = set ? old | mask : old & ~mask;
            if (now != old) {
                w[i] = now;
                changed += Long.bitCount(old ^ now);
                unflushed[slot].set(i / WORDS_PER_BLOCK);
            }
        }
        dirtyBits[slot] += set ? changed : -changed;
        return changed;
    }

    /** Caller holds the lock. @return the first bit at or after from that is set (or clear), else -1 */
    private long nextBit(long[] w, long from, boolean clear) {
        if (from < 0) {
            throw new IllegalArgumentException("bit " + from + " is negative");
        }
        if (from >= bits) {
            return -1;
        }
        int i = (int) (from >>> 6);
        long word = (clear ? ~w[i] : w[i]) & (-1L << from);
        while (true) {
            if (word != 0) {
                long b = ((long) i << 6) + Long.numberOfTrailingZeros(word);
                return b < bits ? b : -1;
            }
            if (++i >= wordsInUse) {
                return -1;
            }
            word = clear ? ~w[i] : w[i];
        }
    }

    private void checkSlot(int slot) {
        if (slot < 0 || slot >= words.length) {
            throw new IllegalArgumentException("peer slot " + slot + " out of range 0.." + (words.length - 1));
        }
    }

    private void checkBits(int slot, long from, long to) {
        checkSlot(slot);
        if (from < 0 || to < from || to > bits) {
            throw new IllegalArgumentException("bits [" + from + ", " + to + ") outside [0, " + bits + ")");
        }
    }

    private void checkBytes(long offset, long length) {
        if (offset < 0 || length < 0 || offset + length > geometry.dataSizeBytes()) {
            throw new IllegalArgumentException("byte range [" + offset + ", +" + length + ") outside the data area of "
                    + geometry.dataSizeBytes() + " bytes");
        }
    }
}
