package io.replstor.replicator.meta;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.BitSet;
import java.util.List;
import java.util.Set;
import java.util.stream.LongStream;

import static io.replstor.replicator.meta.GenerationUuids.UUID_JUST_CREATED;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class GenerationUuidsTest {
    private static final long A = 0xAAAA_0000_0000_0010L;
    private static final long B = 0xBBBB_0000_0000_0020L;
    private static final long C = 0xCCCC_0000_0000_0030L;

    @TempDir
    Path dir;

    private static BitSet slots(int... s) {
        BitSet b = new BitSet();
        for (int i : s) {
            b.set(i);
        }
        return b;
    }

    @Test
    @Timeout(5)
    void newCurrentRotatesTheOldOneIntoDisconnectedSlotsOnly() {
        GenerationUuids g = new GenerationUuids(A, new long[3], new long[0]);
        GenerationUuids n = g.withNewCurrent(B, false, slots(0, 2));
        assertEquals(B, n.current());
        assertEquals(A, n.bitmapUuid(0));
        assertEquals(0, n.bitmapUuid(1), "connected: keeps receiving the writes, nothing to record");
        assertEquals(A, n.bitmapUuid(2));
        assertEquals(List.of(), n.history(), "A is kept as a bitmap UUID, not in the history");
    }

    @Test
    @Timeout(5)
    void slotAlreadyRecordingKeepsItsBitmapUuidAndTheOldCurrentGoesToHistory() {
        GenerationUuids g = new GenerationUuids(A, new long[2], new long[0]).withNewCurrent(B, false, slots(0));
        GenerationUuids n = g.withNewCurrent(C, true, slots(0));
        assertEquals(A, n.bitmapUuid(0), "still recording since A");
        assertEquals(List.of(B), n.history());
        assertEquals(C | 1, n.current(), "created while Primary");
        assertTrue(n.primaryFlag());
    }

    @Test
    @Timeout(5)
    void justCreatedIsNeverRotated() {
        GenerationUuids n = GenerationUuids.justCreated(2).withNewCurrent(A, true, slots(0, 1));
        assertEquals(0, n.bitmapUuid(0));
        assertEquals(List.of(), n.history());
        assertThrows(IllegalArgumentException.class, () -> n.withNewCurrent(UUID_JUST_CREATED | 1, false, slots()));
        assertThrows(IllegalArgumentException.class, () -> n.withNewCurrent(1, false, slots()));
    }

    @Test
    @Timeout(5)
    void clearBitmapVariantStopsRecordingAndKeepsTheOldCurrentInHistory() {
        GenerationUuids g = new GenerationUuids(A, new long[] {C, C}, new long[0]);
        GenerationUuids n = g.withNewCurrentClearingBitmaps(B, false, slots(1));
        assertEquals(B, n.current());
        assertEquals(C, n.bitmapUuid(0));
        assertEquals(0, n.bitmapUuid(1));
        assertEquals(List.of(A), n.history());
    }

    @Test
    @Timeout(5)
    void finishedResyncMovesTheBitmapUuidToHistory() {
        GenerationUuids g = new GenerationUuids(B, new long[] {A}, new long[] {C});
        GenerationUuids n = g.withBitmapUuidCleared(0);
        assertEquals(0, n.bitmapUuid(0));
        assertEquals(List.of(A, C), n.history());
        assertEquals(n, n.withBitmapUuidCleared(0), "nothing to clear");
    }

    @Test
    @Timeout(5)
    void syncTargetAdoptsTheSourcesCurrentAndHistory() {
        GenerationUuids target = new GenerationUuids(A, new long[] {0, C}, new long[] {0x77});
        GenerationUuids n = target.adoptedFromSyncSource(B | 1, List.of(A, 0x55L), 0, false);
        assertEquals(B, n.current(), "the flag bit follows this node's role, not the source's");
        assertEquals(List.of(A, 0x55L), n.history());
        assertEquals(0, n.bitmapUuid(0));
        assertEquals(C, n.bitmapUuid(1), "other peers keep recording");
    }

    @Test
    @Timeout(5)
    void aSyncTargetKeepsItsOwnOldGenerationInItsHistoryWhenTheSourcesHistoryLacksIt() {
        // the source rotated while the target was left behind: the old generation went to the source's bitmap
        // slots, not its history; a third node still at A must find A in common with the finished target
        GenerationUuids target = new GenerationUuids(A, new long[] {0, 0}, new long[] {0x77});
        GenerationUuids n = target.adoptedFromSyncSource(B, List.of(0x55L), 0, false);
        assertEquals(B, n.current());
        assertEquals(List.of(A, 0x55L), n.history());
        assertTrue(n.historyContains(A));
    }

    @Test
    @Timeout(5)
    void comparisonsMaskThePrimaryBit() {
        assertTrue(GenerationUuids.same(A, A | 1));
        assertFalse(GenerationUuids.same(A, B));
        GenerationUuids g = new GenerationUuids(C, new long[1], new long[] {A | 1});
        assertTrue(g.historyContains(A));
        assertFalse(g.historyContains(B));
    }

    @Test
    @Timeout(5)
    void historyKeepsTheThirtyTwoNewestWithoutDuplicates() {
        GenerationUuids g = new GenerationUuids(0x1000, new long[1], new long[0]);
        for (long i = 1; i <= 40; i++) {
            g = g.withNewCurrent(0x1000 + i * 16, false, slots());
        }
        assertEquals(32, g.history().size());
        assertEquals(0x1000 + 39 * 16, g.history().get(0));
        GenerationUuids h = new GenerationUuids(A, new long[] {C}, new long[] {B, C | 1});
        assertEquals(List.of(C, B), h.withBitmapUuidCleared(0).history(), "C moves to the front, once");
    }

    @Test
    @Timeout(5)
    void generatorSkipsZeroJustCreatedAndClearsThePrimaryBit() {
        ArrayDeque<Long> values = new ArrayDeque<>(List.of(0L, 1L, 4L, 5L, 0x1235L));
        UuidGenerator gen = new UuidGenerator(values::removeFirst);
        assertEquals(0x1234L, gen.next());
        UuidGenerator secure = UuidGenerator.secure();
        assertEquals(100, LongStream.range(0, 100).map(i -> secure.next()).distinct()
                .filter(GenerationUuids::meaningful).filter(u -> (u & 1) == 0).count());
    }

    @Test
    @Timeout(10)
    void newCurrentUuidIsPersistedWithTheDisconnectedPeersRecording() throws Exception {
        Path file = dir.resolve("r0.img");
        ArrayDeque<Long> values = new ArrayDeque<>(List.of(A, B));
        CreateOptions options = CreateOptions.of("r0", 0).withMaxPeers(3).withPeerNodeIds(List.of(1, 2));
        try (Metadata md = Metadata.create(MetaFiles.internal(file, 64 * MetaFiles.MIB), options,
                new UuidGenerator(values::removeFirst))) {
            md.newCurrentUuid(Set.of(1, 2), true); // just created -> A, nothing rotated
            GenerationUuids u = md.newCurrentUuid(Set.of(1), true); // node 2 lost
            assertEquals(B | 1, u.current());
            assertEquals(0, u.bitmapUuid(0));
            assertEquals(A | 1, u.bitmapUuid(1));
            assertEquals(0, u.bitmapUuid(2), "an unassigned slot records nothing");
        }
        try (Metadata md = MetaFiles.open(file)) {
            assertEquals(A | 1, md.state().uuids().bitmapUuid(1));
            assertEquals(B | 1, md.state().uuids().current());
        }
    }

    @Test
    @Timeout(10)
    void clearingBitmapsClearsTheirBitsToo() throws Exception {
        Path file = dir.resolve("r0.img");
        CreateOptions options = CreateOptions.of("r0", 0).withPeerNodeIds(List.of(1));
        try (Metadata md = MetaFiles.create(file, 64 * MetaFiles.MIB, options)) {
            md.bitmap().setAll(0);
            GenerationUuids u = md.newCurrentUuidClearingBitmaps(Set.of(1), false);
            assertTrue(GenerationUuids.meaningful(u.current()));
            assertEquals(0, md.bitmap().dirtyBits(0));
        }
        try (Metadata md = MetaFiles.open(file)) {
            assertEquals(0, md.bitmap().dirtyBits(0));
        }
    }
}
