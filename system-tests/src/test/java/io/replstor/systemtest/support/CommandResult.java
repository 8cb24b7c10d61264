package io.replstor.systemtest.support;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import java.time.Duration;
import java.util.List;

/** What an {@link ExternalCommand} did; {@link #describe()} is the text every assertion about it carries. */
public record CommandResult(List<String> argv, int exitCode, String stdout, String stderr, Duration elapsed,
                            boolean timedOut, Duration timeout) {
    /** Output longer than this is cut in the middle of assertion messages. */
    private static final int MAX_SHOWN_CHARS = 16 * 1024;

    public String describe() {
        String status = timedOut
                ? "TIMED OUT after " + timeout.toMillis() + " ms (stopped by the test)"
                : "exit " + exitCode + " after " + elapsed.toMillis() + " ms";
        return "$ " + String.join(" ", argv) + "\n" + status
                + "\n--- stdout ---\n" + shorten(stdout)
                + "\n--- stderr ---\n" + shorten(stderr);
    }

    public CommandResult assertSuccess() {
        assertFalse(timedOut, () -> "command timed out:\n" + describe());
        assertEquals(0, exitCode, () -> "command failed:\n" + describe());
        return this;
    }

    /** Asserts that the command ran to completion and was refused (non-zero exit), not that it hung. */
    public CommandResult assertFailure() {
        assertFalse(timedOut, () -> "command timed out instead of failing:\n" + describe());
        assertNotEquals(0, exitCode, () -> "command was expected to fail but succeeded:\n" + describe());
        return this;
    }

    private static String shorten(String text) {
        if (text.length() <= MAX_SHOWN_CHARS) {
            return text;
        }
        int half = MAX_SHOWN_CHARS / 2;
        return text.substring(0, half) + "\n[... " + (text.length() - MAX_SHOWN_CHARS) + " chars cut ...]\n"
                + text.substring(text.length() - half);
    }
}
