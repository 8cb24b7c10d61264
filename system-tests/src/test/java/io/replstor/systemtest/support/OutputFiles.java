package io.replstor.systemtest.support;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Reads the files a program's output went to (logs, captured stdout and stderr) in bounded memory, however much the
 * program wrote. A program caught in an error loop can write gigabytes in a minute; a test that then quotes its
 * output in a failure message must still fail with that message, where reading the whole file would end the test
 * run with an {@link OutOfMemoryError} ("Required array size too large" past 2 GiB).
 */
public final class OutputFiles {
    /** Up to this size {@link #read(Path)} returns the whole file; above it, its head and its tail. */
    public static final int READ_LIMIT = 4 << 20;
    /** How much of the start {@link #read} keeps of a larger file: the command line and how the program started. */
    public static final int HEAD_BYTES = 64 << 10;
    private static final int SCAN_CHUNK = 1 << 20;

    private OutputFiles() {
    }

    /**
     * The file as text: all of it up to {@link #READ_LIMIT} bytes; beyond that its first {@link #HEAD_BYTES}, a line
     * saying how many bytes were left out and naming the file, and its last bytes, {@link #READ_LIMIT} in all.
     */
    public static String read(Path file) {
        return read(file, READ_LIMIT);
    }

    /** {@link #read(Path)} with another limit (more than {@link #HEAD_BYTES}). */
    public static String read(Path file, int limit) {
        if (limit <= HEAD_BYTES) {
            throw new IllegalArgumentException("limit " + limit + " must exceed the head of " + HEAD_BYTES + " bytes");
        }
        try (FileChannel ch = FileChannel.open(file)) {
            long size = ch.size();
            if (size <= limit) {
                return read(ch, 0, (int) size);
            }
            int tail = limit - HEAD_BYTES;
            return read(ch, 0, HEAD_BYTES) + "\n[... " + (size - HEAD_BYTES - tail) + " of " + size
                    + " bytes left out; the whole output is in " + file + " ...]\n" + read(ch, size - tail, tail);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
    }

    public static long size(Path file) {
        try {
            return Files.size(file);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
    }

    /** Whether the file holds {@code text} (ASCII) anywhere; reads it in 1 MiB chunks. */
    public static boolean contains(Path file, String text) {
        if (text.isEmpty()) {
            return true;
        }
        int keep = text.length() - 1;
        try (InputStream in = Files.newInputStream(file)) {
            byte[] buf = new byte[keep + SCAN_CHUNK];
            int kept = 0;
            int n;
            while ((n = in.readNBytes(buf, kept, SCAN_CHUNK)) > 0) {
                int filled = kept + n;
                if (new String(buf, 0, filled, StandardCharsets.ISO_8859_1).contains(text)) {
                    return true;
                }
                // a match may straddle two chunks: carry the last text.length() - 1 bytes over
                kept = Math.min(filled, keep);
                System.arraycopy(buf, filled - kept, buf, 0, kept);
            }
            return false;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
    }

    private static String read(FileChannel ch, long position, int length) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(length);
        while (buf.hasRemaining() && ch.read(buf, position + buf.position()) >= 0) {
            // a file that shrank under us just gives less
        }
        return new String(buf.array(), 0, buf.position(), StandardCharsets.UTF_8);
    }
}
