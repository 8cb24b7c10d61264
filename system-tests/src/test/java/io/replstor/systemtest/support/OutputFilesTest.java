package io.replstor.systemtest.support;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.OptionalInt;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Output of a program caught in an error loop: reading it stays bounded, keeps its start and its end, says what it
 * left out, and a search still sees all of it. The programs are real ({@code sh}) writing real files.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class OutputFilesTest {
    /** A shell loop that prints numbered error lines: {@code line 1 of N} ... {@code line N of N}. */
    private static List<String> errorLoop(int lines) {
        return List.of(Tools.require("sh").toString(), "-c", "echo START; i=1; while [ $i -le " + lines
                + " ]; do echo \"fio: nbd_poll: nothing to poll for in state DEAD: line $i of " + lines
                + "\"; i=$((i+1)); done; echo THE-END >&2");
    }

    @Test
    void aHugeLogIsReadAsItsHeadAndTailAndSearchedWhole(@TempDir Path dir) throws Exception {
        int lines = 120_000; // about 8 MiB, twice the read limit
        BackgroundProcess p = BackgroundProcess.start(errorLoop(lines), dir.resolve("loop.log"));
        assertEquals(OptionalInt.of(0), p.awaitExit(Duration.ofSeconds(50)), p::commandLine);

        long size = p.logBytes();
        assertTrue(size > 2L * OutputFiles.READ_LIMIT, "the loop must write well over the limit: " + size);
        String log = p.log();
        assertTrue(log.length() <= OutputFiles.READ_LIMIT + 200, "read " + log.length() + " chars of " + size);
        assertTrue(log.startsWith("$ "), "the command line heads the log");
        assertTrue(log.contains("\nSTART\n"), "the head is kept");
        assertTrue(log.contains("bytes left out; the whole output is in " + dir.resolve("loop.log")),
                "the cut is marked");
        assertTrue(log.endsWith("line " + lines + " of " + lines + "\nTHE-END\n"), "the tail is kept");

        // a line from the middle, cut from log(), is still found by the search, as is text across a chunk boundary
        String middle = "line " + lines / 2 + " of " + lines + "\n";
        assertFalse(log.contains(middle));
        assertTrue(p.logContains(middle));
        assertTrue(p.logContains("THE-END"));
        assertFalse(p.logContains("line " + (lines + 1) + " of"));
    }

    @Test
    void aMatchAcrossTheReadChunksIsFound(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("straddle.log");
        String needle = "LEAK: ByteBuf.release() was not called";
        byte[] bytes = new byte[(3 << 20) + 100];
        java.util.Arrays.fill(bytes, (byte) 'x');
        byte[] n = needle.getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        // starts 10 bytes before the first 1 MiB boundary, ends after it
        System.arraycopy(n, 0, bytes, (1 << 20) - 10, n.length);
        Files.write(file, bytes);

        assertTrue(OutputFiles.contains(file, needle));
        assertFalse(OutputFiles.contains(file, needle + "!"));
        assertEquals(bytes.length, OutputFiles.read(file).length(), "under the limit the whole file is read");
    }

    @Test
    void aCommandThatFloodsStderrIsCapturedInBoundedMemory() {
        long flood = 70_000_000; // over the 64 MiB capture limit
        CommandResult result = ExternalCommand.of("sh", "-c", "echo FIRST >&2; yes 'fio: nbd_poll: DEAD' | head -c "
                + flood + " >&2; echo >&2; echo LAST >&2; exit 7").timeout(Duration.ofSeconds(50)).run();

        assertEquals(7, result.exitCode(), result::describe);
        assertTrue(result.stderr().startsWith("FIRST\nfio: nbd_poll: DEAD\n"), "the head is kept");
        assertTrue(result.stderr().endsWith("\nLAST\n"), "the tail is kept");
        assertTrue(result.stderr().contains(" bytes left out; the whole output is in "), "the cut is marked");
        assertTrue(result.stderr().length() <= (64 << 20) + 200, "bounded: " + result.stderr().length());
    }
}
