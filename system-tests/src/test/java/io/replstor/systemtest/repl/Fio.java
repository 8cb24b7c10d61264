package io.replstor.systemtest.repl;

import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.replstor.systemtest.support.BackgroundProcess;
import io.replstor.systemtest.support.CommandResult;
import io.replstor.systemtest.support.ExternalCommand;
import io.replstor.systemtest.support.OutputFiles;
import io.replstor.systemtest.support.Tools;
import java.time.Duration;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * fio command lines for the nbd engine (libnbd, one connection): random 4 KiB writes with crc32c verify headers,
 * and the verify-only pass that reads them back. {@code --aux-path} keeps fio's verify state files in the test's
 * directory; the JSON report goes to a file.
 */
final class Fio {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final String name;
    private final long offset;
    private final long size;
    private final int iodepth;
    private final long randseed;
    private final List<String> extra = new ArrayList<>();

    private Fio(String name, long offset, long size, int iodepth, long randseed) {
        this.name = name;
        this.offset = offset;
        this.size = size;
        this.iodepth = iodepth;
        this.randseed = randseed;
    }

    /**
     * A random-write job over {@code [offset, offset+size)}: every 4 KiB block once, in an order (and with data)
     * that {@code randseed} fixes, so that a verify pass with the same parameters knows what each block must hold.
     */
    static Fio randomWrites(String name, long offset, long size, int iodepth, long randseed) {
        return new Fio(name, offset, size, iodepth, randseed);
    }

    /**
     * Extra fio options, e.g. {@code --rate_iops=N}. Not pacing ({@code --rate_iops}, {@code --thinktime}) in a job
     * whose server is killed under it: fio then waits in {@code io_u_quiesce}, which never ends once the connection
     * is dead (see {@link PrimaryCrashVerifyStateTest}).
     */
    Fio with(String... options) {
        extra.addAll(List.of(options));
        return this;
    }

    /** The write pass; with {@code saveState} fio records which writes completed in {@code NAME...verify.state}. */
    List<String> writeCommand(String uri, Path dir, boolean saveState) {
        List<String> argv = common(uri, dir);
        argv.addAll(List.of("--do_verify=0", "--verify_state_save=" + (saveState ? 1 : 0),
                "--output=" + report(dir, "write")));
        return argv;
    }

    /**
     * The verify-only pass: reads back what the write pass wrote and checks every block; with {@code loadState},
     * only the writes the state file says completed (the rest may legitimately be missing).
     */
    List<String> verifyCommand(String uri, Path dir, boolean loadState) {
        List<String> argv = common(uri, dir);
        argv.addAll(List.of("--verify_only", "--verify_fatal=1", "--verify_state_save=0",
                "--output=" + report(dir, "verify")));
        if (loadState) {
            // fio decides where to stop (the first write of the last iodepth issued that did not complete) by
            // counting completed reads; with reads in flight that count lags and it would also read up to
            // iodepth blocks that were never acknowledged. One read at a time makes the cut exact.
            argv.addAll(List.of("--verify_state_load=1", "--iodepth=1"));
        }
        return argv;
    }

    private List<String> common(String uri, Path dir) {
        List<String> argv = new ArrayList<>(List.of("--aux-path=" + dir,
                "--output-format=json", "--name=" + name, "--ioengine=nbd", "--uri=" + uri, "--rw=randwrite",
                "--bs=4k", "--iodepth=" + iodepth, "--offset=" + offset, "--size=" + size, "--randseed=" + randseed,
                "--verify=crc32c"));
        argv.addAll(extra);
        return argv;
    }

    Path report(Path dir, String pass) {
        return dir.resolve(name + "-" + pass + ".json");
    }

    /** The job object of a JSON report (fio may put warnings before the JSON). */
    static JsonNode job(Path report) throws IOException {
        if (!Files.exists(report)) {
            fail("fio wrote no report " + report);
        }
        // bounded: fio stuck in an error loop writes its messages here too, gigabytes of them
        String text = OutputFiles.read(report, 64 << 20);
        int start = text.indexOf('{');
        if (start < 0) {
            fail("fio report " + report + " holds no JSON:\n" + text);
        }
        return JSON.readTree(text.substring(start)).path("jobs").path(0);
    }

    /** Runs fio with {@code args} to completion (not checked). */
    static CommandResult run(List<String> args, Duration limit) {
        return ExternalCommand.of("fio", args).timeout(limit).run();
    }

    /** Starts fio with {@code args} in the background; the fixture stops it by PID after the test. */
    static BackgroundProcess start(ReplFixture fixture, List<String> args, String logName) throws IOException {
        List<String> argv = new ArrayList<>();
        argv.add(Tools.require("fio").toString());
        argv.addAll(args);
        return fixture.startHelper(argv, logName);
    }

    /** Plain write load without verify headers (for tests that compare the replicas afterwards). */
    static List<String> load(String name, String uri, long offset, long size, int iodepth, String... options) {
        List<String> argv = new ArrayList<>(List.of("--name=" + name,
                "--ioengine=nbd", "--uri=" + uri, "--rw=randwrite", "--bs=4k", "--iodepth=" + iodepth,
                "--offset=" + offset, "--size=" + size));
        argv.addAll(List.of(options));
        return argv;
    }
}
