package io.replstor.systemtest.support;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * One run of an external program with a time limit. Output goes to temporary files rather than pipes, so a chatty
 * program cannot block on a full pipe, and comes back in a {@link CommandResult} whose description is meant for
 * assertion messages. A program that overruns its limit is stopped (SIGTERM, then SIGKILL) by the PID this class
 * started, together with any children it spawned.
 */
public final class ExternalCommand {
    private static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(60);
    private static final Duration STOP_GRACE = Duration.ofSeconds(5);
    /**
     * Captured stdout and stderr are kept whole up to this size, so that checks on them see everything; above it (a
     * program stuck printing errors) only their head and tail, rather than the test run dying of OutOfMemoryError.
     */
    private static final int CAPTURE_LIMIT = 64 << 20;

    private final List<String> argv;
    private Duration timeout = DEFAULT_TIMEOUT;
    private Path stdoutFile;

    private ExternalCommand(List<String> argv) {
        this.argv = List.copyOf(argv);
    }

    /** {@code program} is looked up with {@link Tools#require}, so a missing program fails with its package name. */
    public static ExternalCommand of(String program, String... args) {
        List<String> argv = new ArrayList<>();
        argv.add(Tools.require(program).toString());
        argv.addAll(Arrays.asList(args));
        return new ExternalCommand(argv);
    }

    public static ExternalCommand of(String program, List<String> args) {
        return of(program, args.toArray(String[]::new));
    }

    public ExternalCommand timeout(Duration limit) {
        this.timeout = limit;
        return this;
    }

    /** Sends stdout to {@code file} instead of capturing it, for binary or very large output. */
    public ExternalCommand stdoutTo(Path file) {
        this.stdoutFile = file;
        return this;
    }

    public CommandResult run() {
        Path out = null;
        Path err = null;
        Process process = null;
        try {
            out = stdoutFile != null ? stdoutFile : Files.createTempFile("cmd-", ".out");
            err = Files.createTempFile("cmd-", ".err");
            long startNs = System.nanoTime();
            process = new ProcessBuilder(argv)
                    .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                    .redirectOutput(out.toFile())
                    .redirectError(err.toFile())
                    .start();
            boolean finished = process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS);
            if (!finished) {
                ProcessControl.stop(process, STOP_GRACE);
            }
            Duration elapsed = Duration.ofNanos(System.nanoTime() - startNs);
            String stdout = stdoutFile != null ? "(written to " + stdoutFile + ")"
                    : OutputFiles.read(out, CAPTURE_LIMIT);
            return new CommandResult(argv, finished ? process.exitValue() : -1, stdout,
                    OutputFiles.read(err, CAPTURE_LIMIT), elapsed, !finished, timeout);
        } catch (IOException e) {
            throw new UncheckedIOException("could not run " + argv, e);
        } catch (InterruptedException e) {
            // the test's @Timeout fired: do not leave the program running
            if (process != null) {
                process.descendants().forEach(ProcessHandle::destroyForcibly);
                process.destroyForcibly();
            }
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while running " + argv, e);
        } finally {
            deleteQuietly(stdoutFile == null ? out : null);
            deleteQuietly(err);
        }
    }

    /** Runs the command and fails the test with its output unless it exits 0. */
    public CommandResult runSuccessfully() {
        return run().assertSuccess();
    }

    private static void deleteQuietly(Path file) {
        if (file != null) {
            try {
                Files.deleteIfExists(file);
            } catch (IOException ignored) {
                // a leftover temp file is harmless
            }
        }
    }
}
