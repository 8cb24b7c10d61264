package io.replstor.replicator.meta;

import io.replstor.common.io.FileBackingStore;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;

/** Real files for metadata tests, and ways to damage their bytes. */
final class MetaFiles {
    static final long MIB = 1 << 20;

    private MetaFiles() {
    }

    /** A sparse backing file of {@code size} bytes (created if missing) with internal metadata. */
    static MetaDisk internal(Path file, long size) throws IOException {
        FileBackingStore.open("r0", file, false, size).close();
        return MetaDisk.openInternal("r0", file, false);
    }

    static MetaDisk internal(Path file) throws IOException {
        return MetaDisk.openInternal("r0", file, false);
    }

    static MetaDisk readOnly(Path file) throws IOException {
        return MetaDisk.openInternal("r0", file, true);
    }

    /** Creates internal metadata on a new sparse file and returns it opened. */
    static Metadata create(Path file, long size, CreateOptions options) throws IOException {
        return Metadata.create(internal(file, size), options);
    }

    static Metadata open(Path file) throws IOException {
        return Metadata.open(internal(file));
    }

    /**
     * Simulates a crash: the process dies without {@link Metadata#close()}. Every metadata write
     * already went to the file with pwrite; only the descriptors go away.
     */
    static void crash(Metadata md) {
        md.disk().close();
    }

    static void write(Path file, long offset, byte[] bytes) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ByteBuffer b = ByteBuffer.wrap(bytes);
            while (b.hasRemaining()) {
                ch.write(b, offset + b.position());
            }
        }
    }

    static byte[] read(Path file, long offset, int length) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            ByteBuffer b = ByteBuffer.allocate(length);
            while (b.hasRemaining() && ch.read(b, offset + b.position()) >= 0) {
                // loop until full or end of file
            }
            return b.array();
        }
    }

    /** Flips every bit of one byte: the block's CRC no longer matches. */
    static void flipByte(Path file, long offset) throws IOException {
        byte[] b = read(file, offset, 1);
        b[0] = (byte) ~b[0];
        write(file, offset, b);
    }

    /** Overwrites a whole 4 KiB block with zeroes: as if never written. */
    static void zeroBlock(Path file, long offset) throws IOException {
        write(file, offset, new byte[MetaBlock.BLOCK_SIZE]);
    }

    /** Overwrites the second half of a block with garbage: a write torn after its first 2 KiB. */
    static void tearSecondHalf(Path file, long offset) throws IOException {
        byte[] garbage = new byte[MetaBlock.BLOCK_SIZE / 2];
        Arrays.fill(garbage, (byte) 0x5A);
        write(file, offset + MetaBlock.BLOCK_SIZE / 2, garbage);
    }
}
