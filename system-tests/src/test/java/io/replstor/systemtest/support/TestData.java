package io.replstor.systemtest.support;

import java.io.IOException;
import java.io.InputStream;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.SplittableRandom;

/** Seeded random file contents, sparse files and checksums. Random tests print their seed. */
public final class TestData {
    /** {@code -D}{@value} repeats a run's random data. */
    public static final String SEED_PROPERTY = "replstor.systemtest.seed";

    private static final int CHUNK_BYTES = 1 << 20;

    private TestData() {
    }

    /** A generator seeded from {@code -Dreplstor.systemtest.seed} or the clock; the seed is printed. */
    public static SplittableRandom seededRandom(String purpose) {
        long seed = Long.getLong(SEED_PROPERTY, System.nanoTime());
        System.out.println(purpose + ": random seed " + seed + " (repeat with -D" + SEED_PROPERTY + "=" + seed + ")");
        return new SplittableRandom(seed);
    }

    /** Creates {@code file} as a sparse file of {@code sizeBytes}, or resizes it. */
    public static Path sparseFile(Path file, long sizeBytes) throws IOException {
        try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw")) {
            raf.setLength(sizeBytes);
        }
        return file;
    }

    /** Writes {@code length} random bytes at {@code offset} of an existing file, leaving the rest as it was. */
    public static void writeRandom(Path file, long offset, long length, SplittableRandom random) throws IOException {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ByteBuffer buffer = ByteBuffer.allocate(CHUNK_BYTES);
            long position = offset;
            long remaining = length;
            while (remaining > 0) {
                int n = (int) Math.min(remaining, CHUNK_BYTES);
                fillRandom(buffer, n, random);
                while (buffer.hasRemaining()) {
                    position += channel.write(buffer, position);
                }
                remaining -= n;
            }
            channel.force(true);
        }
    }

    /** Fills {@code length} bytes at {@code offset} with {@code value}. */
    public static void fill(Path file, long offset, long length, byte value) throws IOException {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ByteBuffer buffer = ByteBuffer.allocate(CHUNK_BYTES);
            long position = offset;
            long remaining = length;
            while (remaining > 0) {
                int n = (int) Math.min(remaining, CHUNK_BYTES);
                buffer.clear().limit(n);
                while (buffer.hasRemaining()) {
                    buffer.put(value);
                }
                buffer.flip();
                while (buffer.hasRemaining()) {
                    position += channel.write(buffer, position);
                }
                remaining -= n;
            }
            channel.force(true);
        }
    }

    /** Reads {@code length} bytes at {@code offset}. */
    public static byte[] read(Path file, long offset, int length) throws IOException {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
            ByteBuffer buffer = ByteBuffer.allocate(length);
            while (buffer.hasRemaining()) {
                if (channel.read(buffer, offset + buffer.position()) < 0) {
                    throw new IOException("unexpected end of " + file + " at " + (offset + buffer.position()));
                }
            }
            return buffer.array();
        }
    }

    public static String sha256(Path file) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            MessageDigest digest = MessageDigest.getInstance("SHA-256");
            byte[] chunk = new byte[CHUNK_BYTES];
            for (int n; (n = in.read(chunk)) > 0; ) {
                digest.update(chunk, 0, n);
            }
            return HexFormat.of().formatHex(digest.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every JVM has SHA-256", e);
        }
    }

    private static void fillRandom(ByteBuffer buffer, int length, SplittableRandom random) {
        buffer.clear().limit(length);
        while (buffer.remaining() >= Long.BYTES) {
            buffer.putLong(random.nextLong());
        }
        while (buffer.hasRemaining()) {
            buffer.put((byte) random.nextInt());
        }
        buffer.flip();
    }
}
