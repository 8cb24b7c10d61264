package io.replstor.replicator.meta;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Set;
import java.util.SortedSet;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.stream.LongStream;

import static io.replstor.replicator.meta.MetaFiles.MIB;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ActivityLogTest {
    private static final long EXTENT = 4 * MIB;

    @TempDir
    Path dir;

    private Path file() {
        return dir.resolve("r0.img");
    }

    /** 64 MiB (16 extents of 4 MiB), al-extents 7, ring of 8. */
    private Metadata smallLog() throws Exception {
        return MetaFiles.create(file(), 64 * MIB, CreateOptions.of("r0", 0).withAlExtents(7));
    }

    /** One completed write into each extent, in order. */
    private static void touch(ActivityLog al, long... extents) throws Exception {
        for (long e : extents) {
            al.beginWrite(e * EXTENT, 4096);
            al.endWrite(e * EXTENT, 4096);
        }
    }

    private static SortedSet<Long> range(long from, long toInclusive) {
        return new TreeSet<>(LongStream.rangeClosed(from, toInclusive).boxed().toList());
    }

    @Test
    @Timeout(10)
    void coldExtentNeedsATransactionAndHotDoesNot() throws Exception {
        try (Metadata md = smallLog()) {
            ActivityLog al = md.activityLog();
            long syncs = md.counters().syncs();
            assertTrue(al.beginWrite(EXTENT + 100, 4096), "cold");
            assertEquals(syncs + 1, md.counters().syncs(), "the transaction is synced before beginWrite returns");
            assertFalse(al.beginWrite(EXTENT + 8192, 4096), "hot");
            assertEquals(syncs + 1, md.counters().syncs());
            assertEquals(2, al.writesInFlight());
            al.endWrite(EXTENT + 100, 4096);
            al.endWrite(EXTENT + 8192, 4096);
            assertEquals(0, al.writesInFlight());
            assertEquals(Set.of(1L), al.activeExtents());
            assertEquals(1, al.newestTransaction());
        }
    }

    @Test
    @Timeout(10)
    void writeAcrossTwoColdExtentsIsOneTransaction() throws Exception {
        try (Metadata md = smallLog()) {
            ActivityLog al = md.activityLog();
            assertTrue(al.beginWrite(2 * EXTENT - 4096, 8192));
            assertEquals(1, md.counters().alTransactions());
            assertEquals(Set.of(1L, 2L), al.activeExtents());
            al.endWrite(2 * EXTENT - 4096, 8192);
            assertThrows(IllegalStateException.class, () -> al.endWrite(2 * EXTENT - 4096, 8192), "unpaired endWrite");
        }
    }

    @Test
    @Timeout(10)
    void leastRecentlyUsedExtentIsEvictedAtAlExtents() throws Exception {
        try (Metadata md = smallLog()) {
            ActivityLog al = md.activityLog();
            touch(al, 0, 1, 2, 3, 4, 5, 6);
            assertEquals(range(0, 6), al.activeExtents());
            touch(al, 0); // 0 is now the most recently used; 1 the least
            assertTrue(al.beginWrite(7 * EXTENT, 4096));
            al.endWrite(7 * EXTENT, 4096);
            assertEquals(Set.of(0L, 2L, 3L, 4L, 5L, 6L, 7L), al.activeExtents());
            assertEquals(1, md.counters().alEvictions());
            assertTrue(al.beginWrite(EXTENT, 4096), "the evicted extent is cold again");
            al.endWrite(EXTENT, 4096);
        }
    }

    @Test
    @Timeout(10)
    void extentWithWritesInFlightIsNeverEvictedAndTheNextColdWriteWaits() throws Exception {
        try (Metadata md = smallLog()) {
            ActivityLog al = md.activityLog();
            for (long e = 0; e < 7; e++) {
                al.beginWrite(e * EXTENT, 4096); // all 7 slots in use
            }
            CompletableFuture<Boolean> waiting = CompletableFuture.supplyAsync(() -> {
                try {
                    return al.beginWrite(9 * EXTENT, 4096);
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
            });
            assertThrows(TimeoutException.class, () -> waiting.get(100, TimeUnit.MILLISECONDS));
            al.endWrite(3 * EXTENT, 4096);
            assertTrue(waiting.get(5, TimeUnit.SECONDS));
            assertEquals(Set.of(0L, 1L, 2L, 4L, 5L, 6L, 9L), al.activeExtents());
            for (long e : new long[] {0, 1, 2, 4, 5, 6, 9}) {
                al.endWrite(e * EXTENT, 4096);
            }
        }
    }

    @Test
    @Timeout(10)
    void recoverAfterCrashReturnsTheHotExtents() throws Exception {
        Metadata md = smallLog();
        ActivityLog al = md.activityLog();
        touch(al, 3, 9);
        al.beginWrite(12 * EXTENT, 4096); // in flight when the node dies
        MetaFiles.crash(md);
        try (Metadata reopened = MetaFiles.open(file())) {
            assertEquals(Set.of(3L, 9L, 12L), reopened.activityLog().recover());
            assertFalse(reopened.activityLog().recovery().cleanShutdown());
            assertNull(reopened.activityLog().recovery().tornTail());
            assertFalse(reopened.activityLog().beginWrite(9 * EXTENT, 4096), "recovered extents stay hot");
        }
    }

    @Test
    @Timeout(10)
    void recoverAfterCleanShutdownReturnsNothing() throws Exception {
        try (Metadata md = smallLog()) {
            touch(md.activityLog(), 3, 9);
        }
        try (Metadata reopened = MetaFiles.open(file())) {
            assertTrue(reopened.activityLog().recover().isEmpty());
            assertEquals(Set.of(3L, 9L), reopened.activityLog().recovery().extentsInLog());
        }
    }

    @Test
    @Timeout(10)
    void evictionPersistsTheBitmapOfTheEvictedExtentFirst() throws Exception {
        Metadata md = smallLog();
        ActivityLog al = md.activityLog();
        touch(al, 0);
        md.bitmap().set(0, 100 * 4096, 4096); // a write in extent 0 the peer missed: in memory only
        touch(al, 1, 2, 3, 4, 5, 6, 7); // evicts extent 0
        assertFalse(al.activeExtents().contains(0L));
        MetaFiles.crash(md);
        try (Metadata reopened = MetaFiles.open(file())) {
            assertTrue(reopened.bitmap().isDirty(0, 100), "on disk before extent 0 left the log");
            assertFalse(reopened.activityLog().recover().contains(0L));
        }
    }

    @Test
    @Timeout(10)
    void tornLastBlockZeroedIsIgnored() throws Exception {
        checkTornLastBlockIsIgnored(true);
    }

    @Test
    @Timeout(10)
    void tornLastBlockWithGarbageIsIgnored() throws Exception {
        checkTornLastBlockIsIgnored(false);
    }

    private void checkTornLastBlockIsIgnored(boolean zeroed) throws Exception {
        Metadata md = smallLog();
        MetadataGeometry g = md.geometry();
        touch(md.activityLog(), 0, 1, 2, 3, 4, 5, 6, 7, 8, 9); // transactions 1..10; 10 adds 9, evicts 2
        assertEquals(10, md.activityLog().newestTransaction());
        MetaFiles.crash(md);
        long newest = g.blockOffset(g.alBlockNumber(10 % g.alRingBlocks()));
        if (zeroed) {
            MetaFiles.zeroBlock(file(), newest);
        } else {
            MetaFiles.tearSecondHalf(file(), newest);
        }
        try (Metadata reopened = MetaFiles.open(file())) {
            ActivityLog.Recovery r = reopened.activityLog().recovery();
            assertEquals(9, r.newestTransaction());
            assertEquals(range(2, 8), reopened.activityLog().recover(), "as of transaction 9");
            assertNotNull(r.tornTail());
            assertTrue(r.tornTail().contains("offset " + newest), r.tornTail());
            // the log goes on from transaction 10, over the torn block
            touch(reopened.activityLog(), 12);
            assertEquals(10, reopened.activityLog().newestTransaction());
        }
    }

    @Test
    @Timeout(10)
    void damagedBlockInsideTheLogFailsOpenNamingIt() throws Exception {
        Metadata md = smallLog();
        MetadataGeometry g = md.geometry();
        touch(md.activityLog(), 0, 1, 2, 3, 4);
        MetaFiles.crash(md);
        long offset = g.blockOffset(g.alBlockNumber(3));
        MetaFiles.flipByte(file(), offset + 600);
        MetadataException e = assertThrows(MetadataException.class, () -> MetaFiles.open(file()));
        assertEquals(MetadataException.Kind.CORRUPT, e.kind());
        assertEquals(offset, e.offsetBytes());
        assertTrue(e.getMessage().contains("activity-log block 3 of 8"), e.getMessage());
    }

    @Test
    @Timeout(20)
    void recoveryRebuildsALargeTableAfterTheRingWrappedManyTimes() throws Exception {
        // 1000 slots > 887 per block: the context takes two transactions; a ring of 3 wraps often
        int extent = MetadataGeometry.MIN_AL_EXTENT_SIZE_BYTES;
        CreateOptions options = CreateOptions.of("r0", 0).withAlExtents(1000).withAlRingBlocks(3)
                .withAlExtentSizeBytes(extent);
        Metadata md = MetaFiles.create(file(), 2000L * extent + MIB, options);
        ActivityLog al = md.activityLog();
        for (long first = 0; first < 1100; first += 64) {
            long length = Math.min(64, 1100 - first) * extent;
            al.beginWrite(first * extent, length);
            al.endWrite(first * extent, length);
        }
        assertEquals(18, al.newestTransaction());
        SortedSet<Long> expected = range(100, 1099); // the first 100 were evicted (LRU)
        assertEquals(expected, al.activeExtents());
        MetaFiles.crash(md);
        Metadata reopened = MetaFiles.open(file());
        assertEquals(expected, reopened.activityLog().recover());
        // and the context rotation continues where it stopped
        ActivityLog again = reopened.activityLog();
        again.beginWrite(1500L * extent, extent);
        again.endWrite(1500L * extent, extent);
        MetaFiles.crash(reopened);
        try (Metadata third = MetaFiles.open(file())) {
            // recovery does not know the LRU order: the table's slot 0 (extent 1000) went first
            SortedSet<Long> after = range(100, 1099);
            after.remove(1000L);
            after.add(1500L);
            assertEquals(after, third.activityLog().recover());
        }
    }
}
