package io.replstor.replicator.meta;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SortedSet;
import java.util.TreeSet;

import static io.replstor.replicator.meta.MetaBlock.BLOCK_SIZE;
import static io.replstor.replicator.meta.MetaBlock.CRC_OFFSET;

/**
 * The activity log: the set of "hot" extents (al-extent size, 4 MiB by default) where writes may be
 * in flight, at most al-extents of them, least recently used evicted first. A write to a cold
 * extent first makes it hot persistently (an AL transaction, synced); after a crash the hot set is
 * read back ({@link #recover()}) and only those extents need a resync, not the whole volume.
 *
 * <h2>Extent table and transactions</h2>
 * The hot set lives in a table of al-extents slots (slot → extent number, or empty). Each
 * transaction records the slot changes it makes (up to {@value #MAX_UPDATES} updates) plus a
 * rolling slice of the whole table (the "context": {@code min(887, al-extents)} consecutive slots,
 * continuing where the previous transaction's slice ended, wrapping). So one transaction is always
 * one 4 KiB block, whatever al-extents is, and the newest R-1 blocks of the ring (R = ring blocks)
 * together hold every slot as long as {@code al-extents <= 887 * (R - 1)} (create-md checks this;
 * 6209 for the default ring of 8).
 *
 * <h2>Activity-log block ({@link MetaBlock} type 2)</h2>
 * <pre>
 * offset  size  field
 *      0    16  block header      transaction = AL transaction number, 1, 2, 3...; the block goes to
 *                                 ring index (transaction mod R)
 *     16     4  update count      0..64
 *     20     4  context start     first slot of the context slice
 *     24     4  context count     min(887, al-extents)
 *     28     4  al-extents        slots in the table; must equal the superblock's
 *     32   512  updates           64 x { u32 slot, u32 extent }, the first "update count" used
 *    544  3548  context           887 x u32 extent of slots start, start+1, ... (mod al-extents),
 *                                 as they are after this transaction's updates
 *   4092     4  CRC32C
 * </pre>
 * Extent numbers are u32; 0xFFFFFFFF is an empty slot.
 *
 * <h2>Recovery</h2>
 * Read the whole ring; the newest valid transaction N is the end of the log. The block after it
 * (ring index (N+1) mod R, the oldest) may be a torn write of transaction N+1: whatever it holds is
 * ignored. Every other block must hold exactly its transaction of the window
 * {@code [max(1, N-R+2), N]} (or be unwritten, for numbers below 1); anything else is corruption
 * and fails the open naming the block. Replaying the window in order (updates, then context)
 * rebuilds the table. create-md zeroes the ring, so the table starts empty.
 *
 * <h2>Ordering with the bitmap</h2>
 * Before a transaction evicts an extent, {@link EvictionHook#beforeEvict} persists the bitmap
 * blocks covering it: a bit set in memory is either on disk or inside a hot extent, so a crash
 * loses none.
 *
 * <p>Thread safety: one monitor. A transaction (write + sync) runs under it, so a write to a hot
 * extent waits while a cold one is being logged (DRBD batches here; this does not yet). When all
 * slots are in use by writes in flight, {@link #beginWrite} waits for an {@link #endWrite}.
 */
public final class ActivityLog {
    static final int UPDATE_COUNT_OFFSET = 16;
    static final int CONTEXT_START_OFFSET = 20;
    static final int CONTEXT_COUNT_OFFSET = 24;
    static final int AL_EXTENTS_OFFSET = 28;
    static final int UPDATES_OFFSET = 32;
    static final int UPDATE_LENGTH = 8;
    static final int UPDATE_SLOT_OFFSET = 0;
    static final int UPDATE_EXTENT_OFFSET = 4;
    static final int MAX_UPDATES = 64;
    static final int CONTEXT_OFFSET = UPDATES_OFFSET + MAX_UPDATES * UPDATE_LENGTH;
    static final int CONTEXT_SLOTS_PER_BLOCK = (CRC_OFFSET - CONTEXT_OFFSET) / Integer.BYTES;
    static final int EMPTY_SLOT = 0xFFFF_FFFF;
    private static final long EMPTY = -1;
    private static final Logger LOG = LoggerFactory.getLogger(ActivityLog.class);

    /** Called before an extent leaves the persisted hot set. */
    @FunctionalInterface
    public interface EvictionHook {
        void beforeEvict(long extent, long offsetBytes, long lengthBytes) throws IOException;
    }

    /**
     * What the ring held when the metadata was opened.
     *
     * @param newestTransaction the newest valid transaction (0: none yet)
     * @param extentsInLog the extent table it describes
     * @param cleanShutdown the metadata had been closed cleanly, so no replay is needed
     * @param tornTail what the ignored block after the newest held, if it was not the expected older
     *                 transaction (null otherwise)
     */
    public record Recovery(long newestTransaction, SortedSet<Long> extentsInLog, boolean cleanShutdown,
                           String tornTail) {
        public Recovery {
            extentsInLog = Collections.unmodifiableSortedSet(new TreeSet<>(extentsInLog));
        }

        /** The extents to resync after a crash: those in the log, or none after a clean shutdown. */
        public SortedSet<Long> hotExtents() {
            return cleanShutdown ? Collections.emptySortedSet() : extentsInLog;
        }
    }

    /** A hot extent: its table slot and the writes in flight to it. */
    private static final class Hot {
        final int slot;
        int users;

        Hot(int slot) {
            this.slot = slot;
        }
    }

    private final MetadataGeometry geometry;
    private final MetaIo io;
    private final EvictionHook hook;
    private final boolean readOnly;
    private final int tableSlots;
    private final long extentCount;
    private final long[] table;
    /** Access order: iteration starts at the least recently used. */
    private final LinkedHashMap<Long, Hot> hot = new LinkedHashMap<>(16, 0.75f, true);
    private final Recovery recovery;
    private long nextTransaction;
    private int nextContextStart;

    private ActivityLog(MetadataGeometry geometry, MetaIo io, EvictionHook hook, boolean readOnly, long[] table,
                        long nextTransaction, int nextContextStart, Recovery recovery) {
        this.geometry = geometry;
        this.io = io;
        this.hook = hook;
        this.readOnly = readOnly;
        this.tableSlots = geometry.alExtents();
        this.extentCount = geometry.alExtentCount();
        this.table = table;
        this.nextTransaction = nextTransaction;
        this.nextContextStart = nextContextStart;
        this.recovery = recovery;
        for (int s = 0; s < table.length; s++) {
            if (table[s] != EMPTY) {
                hot.put(table[s], new Hot(s));
            }
        }
    }

    /** create-md: zeroes the ring (no sync). */
    static void format(MetadataGeometry g, MetaIo io) throws IOException {
        byte[] zeroes = new byte[g.alRingBlocks() * BLOCK_SIZE];
        io.write(g.blockOffset(g.alBlockNumber(0)), zeroes, 0, zeroes.length);
    }

    /** Reads the ring and rebuilds the extent table (see the class comment). */
    static ActivityLog load(MetadataGeometry g, MetaIo io, boolean cleanShutdown, EvictionHook hook, boolean readOnly,
                            List<String> warnings) throws IOException {
        int ring = g.alRingBlocks();
        ByteBuffer buf = io.read(g.blockOffset(g.alBlockNumber(0)), ring);
        BlockCheck[] checks = new BlockCheck[ring];
        long newest = 0;
        for (int i = 0; i < ring; i++) {
            checks[i] = MetaBlock.check(buf, i * BLOCK_SIZE, MetaBlock.TYPE_ACTIVITY_LOG);
            if (checks[i].valid()) {
                checks[i] = checkContent(g, i, buf, i * BLOCK_SIZE);
            }
            if (checks[i].valid()) {
                newest = Math.max(newest, checks[i].transaction());
            }
        }
        int tail = (int) ((newest + 1) % ring);
        String tornTail = null;
        for (int i = 0; i < ring; i++) {
            long blockNumber = g.alBlockNumber(i);
            if (i == tail) {
                long older = newest + 1 - ring;
                boolean expected = older < 1 ? checks[i].reason() == BlockCheck.Reason.ALL_ZERO
                        : checks[i].valid() && checks[i].transaction() == older;
                if (!expected) {
                    tornTail = "block " + blockNumber + " (" + g.describeBlock(blockNumber) + ") at offset "
                            + g.blockOffset(blockNumber) + ", after the newest transaction " + newest + ": "
                            + checks[i].detail();
                }
                continue;
            }
            long w = newest - Math.floorMod(newest - i, ring);
            BlockCheck c = checks[i];
            if (w < 1 ? c.reason() != BlockCheck.Reason.ALL_ZERO : !(c.valid() && c.transaction() == w)) {
                if (c.valid()) {
                    c = BlockCheck.of(BlockCheck.Reason.STALE, c.transaction(), "transaction " + c.transaction()
                            + " where " + (w < 1 ? "nothing" : "transaction " + w)
                            + " belongs (the log has a gap before transaction " + newest + ")");
                }
                throw Metadata.corrupt(io.disk(), g, blockNumber, c);
            }
        }
        long[] table = new long[g.alExtents()];
        Arrays.fill(table, EMPTY);
        int nextContext = 0;
        for (long w = Math.max(1, newest - ring + 2); w <= newest; w++) {
            nextContext = replay(buf, (int) (w % ring) * BLOCK_SIZE, table);
        }
        SortedSet<Long> inLog = new TreeSet<>();
        for (long e : table) {
            if (e != EMPTY && !inLog.add(e)) {
                long blockNumber = g.alBlockNumber((int) (newest % ring));
                throw Metadata.corrupt(io.disk(), g, blockNumber, BlockCheck.of(BlockCheck.Reason.BAD_CONTENT,
                        newest, "the replayed log holds extent " + e + " twice"));
            }
        }
        if (tornTail != null) {
            LOG.warn("{}: activity log: ignored a torn tail: {}", io.disk().describe(), tornTail);
            warnings.add("activity log: ignored a torn tail: " + tornTail);
        }
        Recovery recovery = new Recovery(newest, inLog, cleanShutdown, tornTail);
        return new ActivityLog(g, io, hook, readOnly, table, newest + 1, nextContext, recovery);
    }

    private static BlockCheck checkContent(MetadataGeometry g, int ringIndex, ByteBuffer b, int base) {
        long txn = MetaBlock.transaction(b, base);
        int slots = g.alExtents();
        String bad = null;
        if (txn < 1 || txn % g.alRingBlocks() != ringIndex) {
            bad = "transaction " + txn + " cannot be at ring index " + ringIndex;
        } else if (b.getInt(base + AL_EXTENTS_OFFSET) != slots) {
            bad = "written for al-extents " + b.getInt(base + AL_EXTENTS_OFFSET) + ", the superblock says " + slots;
        } else if (Integer.compareUnsigned(b.getInt(base + UPDATE_COUNT_OFFSET), MAX_UPDATES) > 0) {
            bad = "update count " + Integer.toUnsignedString(b.getInt(base + UPDATE_COUNT_OFFSET));
        } else if (b.getInt(base + CONTEXT_COUNT_OFFSET) != Math.min(CONTEXT_SLOTS_PER_BLOCK, slots)
                || Integer.compareUnsigned(b.getInt(base + CONTEXT_START_OFFSET), slots) >= 0) {
            bad = "context slice [" + Integer.toUnsignedString(b.getInt(base + CONTEXT_START_OFFSET)) + ", +"
                    + Integer.toUnsignedString(b.getInt(base + CONTEXT_COUNT_OFFSET)) + ") does not fit "
                    + slots + " slots";
        } else {
            bad = checkExtents(g, b, base);
        }
        return bad == null ? BlockCheck.ok(txn) : BlockCheck.of(BlockCheck.Reason.BAD_CONTENT, txn, bad);
    }

    private static String checkExtents(MetadataGeometry g, ByteBuffer b, int base) {
        int updates = b.getInt(base + UPDATE_COUNT_OFFSET);
        for (int u = 0; u < updates; u++) {
            int at = base + UPDATES_OFFSET + u * UPDATE_LENGTH;
            int slot = b.getInt(at + UPDATE_SLOT_OFFSET);
            if (Integer.compareUnsigned(slot, g.alExtents()) >= 0 || !validExtent(g, b.getInt(at + UPDATE_EXTENT_OFFSET))) {
                return "update " + u + " (slot " + Integer.toUnsignedString(slot) + ", extent "
                        + Integer.toUnsignedString(b.getInt(at + UPDATE_EXTENT_OFFSET)) + ") is out of range";
            }
        }
        int count = b.getInt(base + CONTEXT_COUNT_OFFSET);
        for (int i = 0; i < count; i++) {
            if (!validExtent(g, b.getInt(base + CONTEXT_OFFSET + i * Integer.BYTES))) {
                return "context entry " + i + " names extent "
                        + Integer.toUnsignedString(b.getInt(base + CONTEXT_OFFSET + i * Integer.BYTES))
                        + " beyond the " + g.alExtentCount() + " extents of the volume";
            }
        }
        return null;
    }

    private static boolean validExtent(MetadataGeometry g, int stored) {
        return stored == EMPTY_SLOT || Integer.toUnsignedLong(stored) < g.alExtentCount();
    }

    /** Applies one transaction to the table. @return the context start the next transaction uses */
    private static int replay(ByteBuffer b, int base, long[] table) {
        int updates = b.getInt(base + UPDATE_COUNT_OFFSET);
        for (int u = 0; u < updates; u++) {
            int at = base + UPDATES_OFFSET + u * UPDATE_LENGTH;
            table[b.getInt(at + UPDATE_SLOT_OFFSET)] = decodeExtent(b.getInt(at + UPDATE_EXTENT_OFFSET));
        }
        int start = b.getInt(base + CONTEXT_START_OFFSET);
        int count = b.getInt(base + CONTEXT_COUNT_OFFSET);
        for (int i = 0; i < count; i++) {
            table[(start + i) % table.length] = decodeExtent(b.getInt(base + CONTEXT_OFFSET + i * Integer.BYTES));
        }
        return (start + count) % table.length;
    }

    private static long decodeExtent(int stored) {
        return stored == EMPTY_SLOT ? EMPTY : Integer.toUnsignedLong(stored);
    }

    /**
     * Called before a write of {@code [offset, offset+length)} is issued. Makes every extent it
     * touches hot; if one was cold, writes an AL transaction and syncs it before returning (and may
     * first persist the bitmap of extents it evicts). Waits while every slot is in use by writes in
     * flight. Each call must be paired with {@link #endWrite} of the same range; if it throws, the
     * write must not be issued and there is nothing to end.
     *
     * @return whether a transaction was written (the extent was cold)
     */
    public boolean beginWrite(long offsetBytes, long lengthBytes) throws IOException {
        if (lengthBytes == 0) {
            checkRange(offsetBytes, 0);
            return false;
        }
        long first = firstExtent(offsetBytes, lengthBytes);
        long last = lastExtent(offsetBytes, lengthBytes);
        if (last - first + 1 > tableSlots) {
            throw new IllegalArgumentException("a write of " + lengthBytes + " bytes spans " + (last - first + 1)
                    + " extents, more than al-extents " + tableSlots);
        }
        boolean logged = false;
        synchronized (this) {
            if (readOnly) {
                throw new IllegalStateException("the metadata is open read-only");
            }
            while (true) {
                List<Long> cold = new ArrayList<>();
                for (long e = first; e <= last; e++) {
                    if (!hot.containsKey(e)) {
                        cold.add(e);
                    }
                }
                if (cold.isEmpty()) {
                    for (long e = first; e <= last; e++) {
                        hot.get(e).users++;
                    }
                    return logged;
                }
                List<Long> batch = cold.subList(0, Math.min(cold.size(), MAX_UPDATES));
                int[] slots = pickSlots(batch.size(), first, last);
                if (slots == null) {
                    awaitEndWrite();
                    continue;
                }
                transaction(batch, slots);
                logged = true;
            }
        }
    }

    /** The write begun by {@link #beginWrite} of the same range completed (or failed). */
    public synchronized void endWrite(long offsetBytes, long lengthBytes) {
        if (lengthBytes == 0) {
            return;
        }
        long last = lastExtent(offsetBytes, lengthBytes);
        for (long e = firstExtent(offsetBytes, lengthBytes); e <= last; e++) {
            Hot h = hot.get(e);
            if (h == null || h.users == 0) {
                throw new IllegalStateException("endWrite of extent " + e + " without a beginWrite");
            }
            if (--h.users == 0) {
                notifyAll();
            }
        }
    }

    /**
     * The extents that were hot when the node stopped, to be marked out of sync for every peer and
     * resynced; empty after a clean shutdown. Read from the ring when the metadata was opened. The
     * caller must mark them in the bitmaps (and flush) before this session closes cleanly: after a
     * clean close they are not reported again.
     */
    public SortedSet<Long> recover() {
        return recovery.hotExtents();
    }

    public Recovery recovery() {
        return recovery;
    }

    /** The extents hot now, in ascending order. */
    public synchronized SortedSet<Long> activeExtents() {
        return new TreeSet<>(hot.keySet());
    }

    public synchronized int writesInFlight() {
        int n = 0;
        for (Hot h : hot.values()) {
            n += h.users;
        }
        return n;
    }

    /** The newest transaction on disk (0: none). */
    public synchronized long newestTransaction() {
        return nextTransaction - 1;
    }

    public int alExtents() {
        return tableSlots;
    }

    public int extentSizeBytes() {
        return geometry.alExtentSizeBytes();
    }

    /** First byte of extent {@code e}. */
    public long extentOffset(long e) {
        return e * geometry.alExtentSizeBytes();
    }

    /** Bytes in extent {@code e} (the last extent may be cut by the end of the data). */
    public long extentLength(long e) {
        return Math.min(geometry.alExtentSizeBytes(), geometry.dataSizeBytes() - extentOffset(e));
    }

    /** @return table slots for {@code n} new extents (free ones first, then LRU idle ones), or null */
    private int[] pickSlots(int n, long first, long last) {
        int[] slots = new int[n];
        int found = 0;
        for (int s = 0; s < table.length && found < n; s++) {
            if (table[s] == EMPTY) {
                slots[found++] = s;
            }
        }
        Iterator<Map.Entry<Long, Hot>> lru = hot.entrySet().iterator();
        while (found < n && lru.hasNext()) {
            Map.Entry<Long, Hot> e = lru.next();
            long extent = e.getKey();
            if (e.getValue().users == 0 && (extent < first || extent > last)) {
                slots[found++] = e.getValue().slot;
            }
        }
        return found == n ? slots : null;
    }

    /** Evicts what the slots hold, logs the new extents, syncs, then updates the table. Holds the monitor. */
    private void transaction(List<Long> extents, int[] slots) throws IOException {
        for (int slot : slots) {
            long victim = table[slot];
            if (victim != EMPTY) {
                hook.beforeEvict(victim, extentOffset(victim), extentLength(victim));
            }
        }
        long[] after = table.clone();
        for (int i = 0; i < slots.length; i++) {
            after[slots[i]] = extents.get(i);
        }
        long txn = nextTransaction;
        int contextCount = Math.min(CONTEXT_SLOTS_PER_BLOCK, tableSlots);
        byte[] block = new byte[BLOCK_SIZE];
        ByteBuffer b = ByteBuffer.wrap(block);
        b.putInt(UPDATE_COUNT_OFFSET, slots.length);
        b.putInt(CONTEXT_START_OFFSET, nextContextStart);
        b.putInt(CONTEXT_COUNT_OFFSET, contextCount);
        b.putInt(AL_EXTENTS_OFFSET, tableSlots);
        for (int i = 0; i < slots.length; i++) {
            b.putInt(UPDATES_OFFSET + i * UPDATE_LENGTH + UPDATE_SLOT_OFFSET, slots[i]);
            b.putInt(UPDATES_OFFSET + i * UPDATE_LENGTH + UPDATE_EXTENT_OFFSET, encodeExtent(extents.get(i)));
        }
        for (int i = 0; i < contextCount; i++) {
            b.putInt(CONTEXT_OFFSET + i * Integer.BYTES, encodeExtent(after[(nextContextStart + i) % tableSlots]));
        }
        MetaBlock.seal(b, 0, MetaBlock.TYPE_ACTIVITY_LOG, txn);
        int ringIndex = (int) (txn % geometry.alRingBlocks());
        io.write(geometry.blockOffset(geometry.alBlockNumber(ringIndex)), block, 0, BLOCK_SIZE);
        io.sync("activity log");

        nextTransaction = txn + 1;
        nextContextStart = (nextContextStart + contextCount) % tableSlots;
        for (int i = 0; i < slots.length; i++) {
            long victim = table[slots[i]];
            if (victim != EMPTY) {
                hot.remove(victim);
                io.counters().alEvictions.increment();
            }
            table[slots[i]] = extents.get(i);
            hot.put(extents.get(i), new Hot(slots[i]));
        }
        io.counters().alTransactions.increment();
    }

    private static int encodeExtent(long extent) {
        return extent == EMPTY ? EMPTY_SLOT : (int) extent;
    }

    private void awaitEndWrite() throws InterruptedIOException {
        try {
            wait();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while waiting for a free activity-log slot (all "
                    + tableSlots + " in use by writes in flight)");
        }
    }

    private long firstExtent(long offset, long length) {
        checkRange(offset, length);
        return offset / geometry.alExtentSizeBytes();
    }

    private long lastExtent(long offset, long length) {
        checkRange(offset, length);
        return (offset + length - 1) / geometry.alExtentSizeBytes();
    }

    private void checkRange(long offset, long length) {
        if (offset < 0 || length < 0 || offset + length > geometry.dataSizeBytes()) {
            throw new IllegalArgumentException("write [" + offset + ", +" + length + ") outside the data area of "
                    + geometry.dataSizeBytes() + " bytes");
        }
    }
}
