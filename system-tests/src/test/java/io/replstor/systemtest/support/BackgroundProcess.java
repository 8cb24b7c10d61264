package io.replstor.systemtest.support;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.OptionalInt;
import java.util.concurrent.TimeUnit;

/**
 * A long-running program the test started (a server, nbdfuse), with stdout and stderr appended to a log file that
 * starts with the command line. It is only ever stopped through the PID of the process started here.
 *
 * <p>Reading the log never takes more than a few MiB of heap, however much the process wrote: a program caught in
 * an error loop can write gigabytes in a minute, and a test that then quotes the log in its failure message must
 * still fail with that message (an {@link OutOfMemoryError} from reading a 2 GiB file would end the whole test
 * run instead).
 */
public final class BackgroundProcess {
    private static final Duration STOP_GRACE = Duration.ofSeconds(5);

    private final List<String> command;
    private final Process process;
    private final Path logFile;
    private boolean stopRequested;
    private List<ProcessHandle> strayChildren = List.of();

    private BackgroundProcess(List<String> command, Process process, Path logFile) {
        this.command = List.copyOf(command);
        this.process = process;
        this.logFile = logFile;
    }

    public static BackgroundProcess start(List<String> command, Path logFile) throws IOException {
        Files.writeString(logFile, "$ " + String.join(" ", command) + "\n");
        Process process = new ProcessBuilder(command)
                .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                .redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(logFile.toFile()))
                .start();
        return new BackgroundProcess(command, process, logFile);
    }

    public long pid() {
        return process.pid();
    }

    public boolean isAlive() {
        return process.isAlive();
    }

    public String commandLine() {
        return String.join(" ", command);
    }

    public Path logFile() {
        return logFile;
    }

    /** The log; beyond a few MiB its head and its tail ({@link OutputFiles#read}). */
    public String log() {
        return OutputFiles.read(logFile);
    }

    /** The log's size in bytes. */
    public long logBytes() {
        return OutputFiles.size(logFile);
    }

    /** Whether the log holds {@code text} (ASCII) anywhere, however large it is. */
    public boolean logContains(String text) {
        return OutputFiles.contains(logFile, text);
    }

    /** The exit code if the process ended without {@link #stop()} being called: it crashed or gave up. */
    public OptionalInt exitedUnexpectedly() {
        return !stopRequested && !process.isAlive() ? OptionalInt.of(process.exitValue()) : OptionalInt.empty();
    }

    /** Waits for the process to end by itself; empty if it is still running after {@code limit}. */
    public OptionalInt awaitExit(Duration limit) throws InterruptedException {
        return process.waitFor(limit.toMillis(), TimeUnit.MILLISECONDS)
                ? OptionalInt.of(process.exitValue()) : OptionalInt.empty();
    }

    /** SIGTERM, then SIGKILL after a grace period; does nothing for a process that already ended. */
    public void stop() {
        stopRequested = true;
        if (!process.isAlive()) {
            return;
        }
        try {
            strayChildren = ProcessControl.stop(process, STOP_GRACE);
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }

    /** The exit code once the process has ended. */
    public OptionalInt exitCode() {
        return process.isAlive() ? OptionalInt.empty() : OptionalInt.of(process.exitValue());
    }

    /** Children that outlived the process at {@link #stop()}: a launcher that forks instead of exec'ing. */
    public List<ProcessHandle> strayChildren() {
        return strayChildren;
    }
}
