package io.replstor.systemtest.repl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import io.replstor.systemtest.support.BackgroundProcess;
import io.replstor.systemtest.support.CommandResult;
import io.replstor.systemtest.support.ExternalCommand;
import io.replstor.systemtest.support.ReplstorRoot;
import io.replstor.systemtest.support.Tools;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.concurrent.TimeUnit;

/**
 * One node of a test cluster: its configuration file, backing file and admin socket, and the repld processes
 * started for it ({@code bin/repld --config FILE --node NAME}, through {@code ip netns exec} when the node lives
 * in a namespace). A witness has no backing file and no NBD address; it answers {@code GET /cluster} and holds no
 * resource. Every start logs to its own file ({@code NAME.N.log}). Processes are only ever signalled through their
 * PID: SIGTERM for a clean stop, SIGKILL for a crash, SIGSTOP/SIGCONT for a freeze (a frozen node is thawed before
 * the fixture stops it).
 */
final class ReplNode {
    /** Four JVMs starting at once on two busy cores take a while. */
    static final Duration START_TIMEOUT = Duration.ofSeconds(60);
    private static final Duration REPLCTL_TIMEOUT = Duration.ofSeconds(60);
    private static final Duration KILL_WAIT = Duration.ofSeconds(10);
    /** A repld log above this size in one test is a problem in itself: the busiest test logs well under 1 MiB. */
    private static final long RUNAWAY_LOG_BYTES = 64L << 20;
    private static final Path ROOT = ReplstorRoot.find();

    private final ReplFixture fixture;
    private final String name;
    private final int id;
    private final boolean witness;
    private final Path config;
    private final Path disk;
    private final Path adminSocket;
    private final String nbdAddress;
    private final String raftAddress;
    private final NetNamespace namespace;
    private final Map<String, String> env;
    private final List<BackgroundProcess> runs = new ArrayList<>();
    private BackgroundProcess current;
    /** The current process was SIGKILLed by the test: its end is not a failure. */
    private boolean killed;
    /** The current process was SIGSTOPped by the test and not yet continued. */
    private boolean suspended;

    ReplNode(ReplFixture fixture, String name, int id, boolean witness, Path config, Path disk, Path adminSocket,
             String nbdAddress, String raftAddress, NetNamespace namespace, Map<String, String> env) {
        this.fixture = fixture;
        this.name = name;
        this.id = id;
        this.witness = witness;
        this.config = config;
        this.disk = disk;
        this.adminSocket = adminSocket;
        this.nbdAddress = nbdAddress;
        this.raftAddress = raftAddress;
        this.namespace = namespace;
        this.env = Map.copyOf(env);
    }

    String name() {
        return name;
    }

    Path config() {
        return config;
    }

    boolean isWitness() {
        return witness;
    }

    /** The backing file: data area first, internal metadata at the end. */
    Path disk() {
        requireData("disk");
        return disk;
    }

    /** The store member's listener ({@code raft = HOST:PORT}), or null without a store. */
    String raftAddress() {
        return raftAddress;
    }

    Path adminSocket() {
        return adminSocket;
    }

    /** {@code nbd://HOST:PORT/r0}. */
    String nbdUri() {
        requireData("NBD export");
        return "nbd://" + nbdAddress + "/" + ClusterSpec.RESOURCE;
    }

    boolean running() {
        return current != null && current.isAlive();
    }

    long pid() {
        return current.pid();
    }

    /** Stopped with SIGSTOP by the test and not continued yet. */
    boolean isSuspended() {
        return suspended;
    }

    // ---- processes

    /** Starts repld (bringing r0 up) and waits for its "ready" line. */
    ReplNode start() throws IOException {
        return start(false);
    }

    /** Starts repld with {@code --no-up} when {@code noUp}, and waits for its "ready" line. */
    ReplNode start(boolean noUp) throws IOException {
        launch(noUp);
        awaitReady();
        return this;
    }

    /** Starts repld without waiting; {@link #awaitReady()} waits. */
    void launch(boolean noUp) throws IOException {
        if (running()) {
            throw new IllegalStateException(name + " is already running as pid " + current.pid());
        }
        List<String> argv = new ArrayList<>();
        argv.add(Tools.require("env").toString());
        env.forEach((k, v) -> argv.add(k + "=" + v));
        argv.addAll(List.of(ROOT.resolve("bin/repld").toString(), "--config", config.toString(), "--node", name));
        if (noUp) {
            argv.add("--no-up");
        }
        List<String> command = namespace != null ? namespace.wrap(argv) : argv;
        current = BackgroundProcess.start(command, fixture.logDir().resolve(name + "." + (runs.size() + 1) + ".log"));
        runs.add(current);
        killed = false;
        suspended = false;
    }

    /** Waits for the "ready" line of the process started last. */
    void awaitReady() {
        String ready = (witness ? "replstor witness " : "replstor node ") + name + " (id " + id + ") ready";
        long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
        while (!current.logContains(ready)) {
            if (!current.isAlive()) {
                fail(name + ": repld exited (code " + current.exitCode().orElse(-1) + ") before it was ready:\n"
                        + current.log());
            }
            if (System.nanoTime() > deadline) {
                fail(name + ": repld pid " + current.pid() + " not ready within " + START_TIMEOUT.toSeconds()
                        + " s:\n" + current.log());
            }
            sleep(50);
        }
    }

    /** SIGTERM and wait: a clean stop must exit 0 (demote, tell the peer, close the metadata). */
    void stop() {
        BackgroundProcess p = current;
        p.stop();
        OptionalInt code = p.exitCode();
        assertEquals(OptionalInt.of(0), code, () -> name + ": repld pid " + p.pid()
                + " did not exit 0 on SIGTERM (137 = killed after the grace period):\n"
                + ReplFixture.tail(p.log(), 8192));
    }

    /** SIGKILL through the PID, then wait until the process is gone: a crash. */
    void kill9() throws InterruptedException {
        long pid = current.pid();
        ProcessHandle handle = ProcessHandle.of(pid).orElseThrow(() -> new AssertionError(name + ": pid " + pid
                + " is not running; cannot kill it"));
        killed = true;
        handle.destroyForcibly();
        try {
            handle.onExit().get(KILL_WAIT.toMillis(), TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
            fail(name + ": pid " + pid + " still alive " + KILL_WAIT.toSeconds() + " s after SIGKILL");
        }
    }

    /** SIGSTOP through the PID: the process freezes (its sockets stay open, nothing answers). */
    void sigstop() {
        signal("-STOP");
        suspended = true;
    }

    /** SIGCONT through the PID: a frozen process goes on. */
    void sigcont() {
        signal("-CONT");
        suspended = false;
    }

    private void signal(String signal) {
        ExternalCommand.of("kill", signal, String.valueOf(current.pid())).timeout(KILL_WAIT).runSuccessfully();
    }

    /** For the fixture: stops the node if it runs; what went wrong, if anything. */
    List<String> stopForCleanup() {
        List<String> problems = new ArrayList<>();
        if (current == null) {
            return problems;
        }
        if (suspended && current.isAlive()) {
            sigcont(); // a frozen JVM cannot handle SIGTERM
        }
        OptionalInt crashed = killed ? OptionalInt.empty() : current.exitedUnexpectedly();
        boolean wasAlive = current.isAlive();
        current.stop();
        crashed.ifPresent(code -> problems.add(name + ": repld pid " + current.pid() + " exited on its own with code "
                + code + " during the test (log " + current.logFile() + ")"));
        if (wasAlive && current.exitCode().orElse(-1) != 0) {
            problems.add(name + ": repld pid " + current.pid() + " did not exit 0 on SIGTERM at cleanup: exit code "
                    + current.exitCode().orElse(-1) + " (log " + current.logFile() + ")");
        }
        for (BackgroundProcess run : runs) {
            if (run.logContains("LEAK: ")) {
                problems.add(name + ": repld pid " + run.pid() + " logged a Netty buffer leak (log " + run.logFile()
                        + ")");
            }
            if (run.logBytes() > RUNAWAY_LOG_BYTES) {
                problems.add(name + ": repld pid " + run.pid() + " wrote " + (run.logBytes() >> 20) + " MiB of log, "
                        + "more than a test can explain (a logging loop?); log " + run.logFile());
            }
        }
        if (!current.strayChildren().isEmpty()) {
            problems.add(name + ": repld left child processes " + current.strayChildren() + " (stopped by PID)");
        }
        return problems;
    }

    /** Every start's log, oldest first. */
    List<BackgroundProcess> runs() {
        return runs;
    }

    /** The current (or last) process's log. */
    String log() {
        return current == null ? "" : current.log();
    }

    // ---- admin API

    /** {@code GET /cluster}: the cluster store as this node sees it. */
    ClusterView cluster() throws IOException {
        return new ClusterView(name, AdminSocket.getJson(adminSocket, "/cluster"));
    }

    /** This node's r0 from {@code GET /status}. */
    ResourceView status() throws IOException {
        requireData("resource");
        JsonNode status = AdminSocket.getJson(adminSocket, "/status");
        for (JsonNode r : status.path("resources")) {
            if (ClusterSpec.RESOURCE.equals(r.path("name").asText())) {
                return new ResourceView(name, r);
            }
        }
        throw new IOException(name + ": no resource " + ClusterSpec.RESOURCE + " in the status: " + status);
    }

    /** {@code bin/replctl VERB r0 --config FILE --node NAME OPTIONS...}, not yet checked. */
    CommandResult replctl(String verb, String... options) {
        return replctlWithin(REPLCTL_TIMEOUT, verb, options);
    }

    /** {@link #replctl}, stopped (by its PID) and reported as timed out after {@code limit}. */
    CommandResult replctlWithin(Duration limit, String verb, String... options) {
        List<String> args = new ArrayList<>(List.of(ROOT.resolve("bin/replctl").toString(), verb,
                ClusterSpec.RESOURCE, "--config", config.toString(), "--node", name));
        args.addAll(List.of(options));
        return ExternalCommand.of("env", args).timeout(limit).run();
    }

    /** {@code bin/replctl VERB r0 ...}; fails the test with its output unless it exits 0. */
    CommandResult verb(String verb, String... options) {
        return replctl(verb, options).assertSuccess();
    }

    /** {@code bin/replctl cluster status --json --config FILE --node NAME}, not yet checked. */
    CommandResult clusterStatusCommand() {
        return ExternalCommand.of("env", ROOT.resolve("bin/replctl").toString(), "cluster", "status", "--json",
                "--config", config.toString(), "--node", name).timeout(REPLCTL_TIMEOUT).run();
    }

    /** {@code bin/replctl events --json --now}: the current state as JSON lines. */
    CommandResult eventsNow() {
        return ExternalCommand.of("env", ROOT.resolve("bin/replctl").toString(), "events", "--now", "--json",
                "--config", config.toString(), "--node", name).timeout(REPLCTL_TIMEOUT).run();
    }

    /** {@code bin/replctl events --json} in the background, until the test ends. */
    EventLog followEvents(String logName) throws IOException {
        BackgroundProcess p = fixture.startHelper(List.of(Tools.require("env").toString(),
                ROOT.resolve("bin/replctl").toString(), "events", "--json", "--config", config.toString(),
                "--node", name), logName);
        return new EventLog(name, p);
    }

    @Override
    public String toString() {
        return name + (current != null ? " (pid " + current.pid() + ")" : "");
    }

    private void requireData(String what) {
        if (witness) {
            throw new IllegalStateException(name + " is a witness: it has no " + what);
        }
    }

    static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }
}
