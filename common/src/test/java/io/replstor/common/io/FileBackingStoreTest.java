package io.replstor.common.io;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The file store against real files: ext4 under /tmp, tmpfs under /dev/shm, and a full tmpfs. */
@Timeout(60)
class FileBackingStoreTest {
    @TempDir
    Path dir;

    @Test
    void createsAMissingFileSparseAndReadsZeroes() throws IOException {
        Path f = dir.resolve("new.img");
        try (FileBackingStore s = FileBackingStore.open("new", f, false, 8 << 20)) {
            assertEquals(8 << 20, s.sizeBytes());
            assertEquals(8 << 20, Files.size(f));
            ByteBuf b = Unpooled.directBuffer(4096);
            s.read((8 << 20) - 4096, 4096, b);
            assertArrayEquals(new byte[4096], bytes(b));
            b.release();
            List<long[]> ext = extents(s, 0, 8 << 20);
            assertEquals(1, ext.size());
            assertEquals(1, ext.get(0)[1], "a new file is one hole");
        }
    }

    @Test
    void refusesASizeThatDiffersFromTheFile() throws IOException {
        Path f = dir.resolve("sized.img");
        Files.write(f, new byte[4096]);
        IOException e = assertThrows(IOException.class, () -> FileBackingStore.open("x", f, false, 8192));
        assertTrue(e.getMessage().contains("is 4096 bytes but the export says 8192"), e.getMessage());
        e = assertThrows(IOException.class, () -> FileBackingStore.open("y", dir.resolve("absent.img"), false, 0));
        assertTrue(e.getMessage().contains("does not exist"), e.getMessage());
    }

    @Test
    void writesReadBackAndTrimPunchesHoles() throws IOException {
        for (Path base : new Path[] {dir, Path.of("/dev/shm")}) {
            Path f = Files.createTempFile(base, "fbs", ".img");
            Files.delete(f);
            try (FileBackingStore s = FileBackingStore.open("rw", f, false, 4 << 20)) {
                byte[] data = new byte[1 << 20];
                new java.util.Random(1).nextBytes(data);
                s.write(1 << 20, Unpooled.wrappedBuffer(data), true);
                ByteBuf b = Unpooled.directBuffer(data.length);
                s.read(1 << 20, data.length, b);
                assertArrayEquals(data, bytes(b));
                b.release();
                List<long[]> ext = extents(s, 0, 4 << 20);
                assertEquals(List.of("1048576:1", "1048576:0", "2097152:1"), str(ext), base.toString());
                s.trim(1 << 20, 512 << 10, false);
                assertEquals(List.of("1572864:1", "524288:0", "2097152:1"), str(extents(s, 0, 4 << 20)), base.toString());
                assertEquals((1 << 20) + (512 << 10), s.dataStart(0, 4 << 20));
                assertEquals((1 << 20) + 4096, s.dataStart(1 << 20, 4096), "a range that is all hole: offset + length");
                s.writeZeroes(3 << 19, 4096, true, false, true);
                ByteBuf z = Unpooled.directBuffer(4096);
                s.read(3 << 19, 4096, z);
                assertArrayEquals(new byte[4096], bytes(z));
                z.release();
            } finally {
                Files.deleteIfExists(f);
            }
        }
    }

    @Test
    void fullFileSystemIsNoSpaceNamingPathAndOffset() throws Exception {
        Path mnt = dir.resolve("tiny");
        Files.createDirectories(mnt);
        run("mount", "-t", "tmpfs", "-o", "size=1m", "replstor-test", mnt.toString());
        try {
            Path f = mnt.resolve("big.img");
            try (FileBackingStore s = FileBackingStore.open("full", f, false, 16 << 20)) {
                StorageException e = assertThrows(StorageException.class, () -> {
                    for (long off = 0; off < (16 << 20); off += 1 << 20) {
                        s.write(off, Unpooled.wrappedBuffer(new byte[1 << 20]), false);
                    }
                });
                assertEquals(StorageException.Kind.NO_SPACE, e.kind(), e.getMessage());
                assertTrue(e.getMessage().contains("export 'full': write of 1048576 bytes at offset ")
                        && e.getMessage().contains(f.toString()), e.getMessage());
            }
        } finally {
            run("umount", mnt.toString());
        }
    }

    private static void run(String... cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        if (!p.waitFor(20, TimeUnit.SECONDS) || p.exitValue() != 0) {
            throw new AssertionError(String.join(" ", cmd) + " failed (this test needs root to mount a tmpfs): " + out);
        }
    }

    private static List<long[]> extents(BlockDevice d, long off, long len) throws StorageException {
        List<long[]> out = new ArrayList<>();
        d.extents(off, len, (l, hole) -> out.add(new long[] {l, hole ? 1 : 0}));
        return out;
    }

    private static List<String> str(List<long[]> ext) {
        return ext.stream().map(e -> e[0] + ":" + e[1]).toList();
    }

    private static byte[] bytes(ByteBuf b) {
        byte[] a = new byte[b.readableBytes()];
        b.getBytes(b.readerIndex(), a);
        return a;
    }
}
