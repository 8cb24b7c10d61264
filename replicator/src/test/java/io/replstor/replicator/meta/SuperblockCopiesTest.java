package io.replstor.replicator.meta;

import io.replstor.replicator.DiskState;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static io.replstor.replicator.meta.MetaFiles.MIB;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SuperblockCopiesTest {
    private static final long SIZE = 64 * MIB;
    private static final long COPY_A = SIZE - 2 * 4096;
    private static final long COPY_B = SIZE - 4096;

    @TempDir
    Path dir;

    /**
     * Leaves the older commit (Outdated) and the newer commit (UpToDate) in the two copies, as a
     * crash right after the second commit would; returns the copy that holds the newer one.
     */
    private long twoCommitsThenCrash(Path file) throws Exception {
        Metadata md = MetaFiles.create(file, SIZE, CreateOptions.of("r0", 0));
        md.commit(s -> s.withDiskState(DiskState.OUTDATED));
        md.commit(s -> s.withDiskState(DiskState.UP_TO_DATE));
        long newest = md.superblockTransaction();
        MetaFiles.crash(md);
        return (newest & 1) == 0 ? COPY_A : COPY_B;
    }

    @Test
    @Timeout(10)
    void commitsAlternateBetweenCopies() throws Exception {
        Path file = dir.resolve("r0.img");
        try (Metadata md = MetaFiles.create(file, SIZE, CreateOptions.of("r0", 0))) {
            long before = md.superblockTransaction();
            md.commit(s -> s.withDiskState(DiskState.OUTDATED));
            assertEquals(before + 1, md.superblockTransaction());
        }
        // close wrote the final state to both copies: one damaged copy loses nothing
        MetaFiles.flipByte(file, COPY_A + 100);
        try (Metadata md = Metadata.open(MetaFiles.readOnly(file))) {
            assertEquals("B", md.openReport().superblockCopy());
            assertEquals(DiskState.OUTDATED, md.state().diskState());
            assertTrue(md.state().has(VolumeFlag.AL_CLEAN));
        }
    }

    @Test
    @Timeout(10)
    void newestCopyZeroedFallsBackToTheOlderValidCopy() throws Exception {
        Path file = dir.resolve("r0.img");
        long newest = twoCommitsThenCrash(file);
        MetaFiles.zeroBlock(file, newest);
        try (Metadata md = MetaFiles.open(file)) {
            assertEquals(DiskState.OUTDATED, md.state().diskState(), "the older commit");
            assertEquals(newest == COPY_A ? "B" : "A", md.openReport().superblockCopy());
            assertEquals(BlockCheck.Reason.ALL_ZERO, md.openReport().otherCopy().reason());
            assertEquals(1, md.openReport().warnings().size());
            assertTrue(md.openReport().warnings().get(0).contains("offset " + newest), md.openReport().warnings().get(0));
        }
    }

    @Test
    @Timeout(10)
    void newestCopyTornAfterItsFirstHalfFallsBackToTheOlderValidCopy() throws Exception {
        Path file = dir.resolve("r0.img");
        long newest = twoCommitsThenCrash(file);
        MetaFiles.tearSecondHalf(file, newest);
        try (Metadata md = MetaFiles.open(file)) {
            assertEquals(DiskState.OUTDATED, md.state().diskState());
            assertEquals(BlockCheck.Reason.BAD_CRC, md.openReport().otherCopy().reason());
            // the next commit overwrites the torn copy, the good one stays
            md.commit(s -> s.withDiskState(DiskState.CONSISTENT));
        }
        try (Metadata md = MetaFiles.open(file)) {
            assertEquals(DiskState.CONSISTENT, md.state().diskState());
            assertTrue(md.openReport().warnings().isEmpty());
        }
    }

    @Test
    @Timeout(10)
    void bothCopiesCorruptFailsNamingTheBlocks() throws Exception {
        Path file = dir.resolve("r0.img");
        twoCommitsThenCrash(file);
        MetaFiles.flipByte(file, COPY_A + 300);
        MetaFiles.flipByte(file, COPY_B + 300);
        MetadataException e = assertThrows(MetadataException.class, () -> MetaFiles.open(file));
        assertEquals(MetadataException.Kind.CORRUPT, e.kind());
        String m = e.getMessage();
        assertTrue(m.contains("block " + COPY_A / 4096 + " at offset " + COPY_A), m);
        assertTrue(m.contains("block " + COPY_B / 4096 + " at offset " + COPY_B), m);
        assertTrue(m.contains("CRC32C mismatch") && m.contains(file.toString()), m);
        assertTrue(e.offsetBytes() == COPY_A || e.offsetBytes() == COPY_B);
        assertEquals(e.offsetBytes() / 4096, e.blockNumber());
    }

    @Test
    @Timeout(10)
    void copyWithValidCrcButImpossibleContentIsNotUsed() throws Exception {
        Path file = dir.resolve("r0.img");
        long newest = twoCommitsThenCrash(file);
        // a valid checksum over nonsense: max-peers 40
        java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(MetaFiles.read(file, newest, 4096));
        b.putInt(Superblock.MAX_PEERS_OFFSET, 40);
        b.putInt(MetaBlock.CRC_OFFSET, MetaBlock.crc(b, 0));
        MetaFiles.write(file, newest, b.array());
        try (Metadata md = MetaFiles.open(file)) {
            assertEquals(DiskState.OUTDATED, md.state().diskState());
            assertEquals(BlockCheck.Reason.BAD_CONTENT, md.openReport().otherCopy().reason());
            assertTrue(md.openReport().otherCopy().detail().contains("max-peers 40"),
                    md.openReport().otherCopy().detail());
        }
    }

    @Test
    @Timeout(10)
    void tornCommitAtOpenLeavesTheCleanCopy() throws Exception {
        Path file = dir.resolve("r0.img");
        MetaFiles.create(file, SIZE, CreateOptions.of("r0", 0)).close();
        Metadata md = MetaFiles.open(file); // commits "not clean"
        long txn = md.superblockTransaction();
        MetaFiles.crash(md);
        MetaFiles.zeroBlock(file, (txn & 1) == 0 ? COPY_A : COPY_B);
        try (Metadata reopened = MetaFiles.open(file)) {
            assertTrue(reopened.openReport().previousShutdownClean());
            assertFalse(reopened.state().has(VolumeFlag.AL_CLEAN));
        }
    }
}
