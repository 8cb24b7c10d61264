package io.replstor.systemtest.support;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.OptionalInt;
import java.util.concurrent.TimeUnit;

/**
 * A long-running program the test started (a server, nbdfuse), with stdout and stderr appended to a log file that
 * starts with the command line. It is only ever stopped through the PID of the process started here.
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

    public String log() {
        try {
            return Files.readString(logFile);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read log " + logFile, e);
        }
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
