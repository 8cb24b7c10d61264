package io.replstor.cluster;

import io.replstor.replicator.config.HostPort;
import io.replstor.replicator.engine.EngineException;
import io.replstor.replicator.engine.ReplicationNode;
import io.replstor.replicator.engine.Resource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The admin verbs {@code attach} and {@code detach}: the kernel NBD client on this node's own NBD
 * export of a resource, so the volume appears as {@code /dev/nbdN} (the DRBD experience of
 * {@code /dev/drbd0}).
 *
 * <p>{@code attach} runs Debian 12's {@code nbd-client} (3.24) as
 * {@code nbd-client -N RES -b 4096 -t 60 -persist -nonetlink HOST PORT /dev/nbdN} against the node's
 * {@code nbd} address (a wildcard address becomes loopback), on the device asked for or the first
 * free one (free: no {@code /sys/block/nbdN/pid} and size 0), after {@code modprobe nbd} when no
 * {@code /sys/block/nbd0} exists; then it waits until the kernel device has a size and records the
 * device on the {@link Resource} (status {@code device}). {@code -nonetlink}: nbd-client 3.24 ignores
 * {@code -persist} when it configures the device over netlink (its default); with the ioctl
 * interface it stays as a daemon that reconnects when the connection drops. The NBD connection is an
 * ordinary client of the export: with auto-promote it promotes the node, and a node that cannot serve
 * refuses it with a message saying where the Primary is, which the error passes on.
 *
 * <p>{@code detach} refuses while the device (or a partition of it) is mounted, swapped on or held
 * by another device, then runs {@code nbd-client -d /dev/nbdN} and waits until the kernel has let
 * the device go; the server sees the client leave (auto-demote). A device attached by an earlier
 * run of the daemon is found again by its nbd-client's command line.
 *
 * <p>On SIGTERM/SIGINT the daemon detaches every attached device ({@link #detachAll}) before it stops
 * serving, so each client leaves cleanly (and auto-demotes) before the daemon demotes and closes.
 */
final class NbdAttach {
    private static final Logger LOG = LoggerFactory.getLogger(NbdAttach.class);
    static final int BLOCK_SIZE = 4096;
    /** Seconds a request may take before the kernel gives up on the connection (nbd-client -t). */
    static final int TIMEOUT_SECONDS = 60;
    static final Pattern DEVICE = Pattern.compile("/dev/nbd(\\d+)");
    /** nbd-client options that take a value (short and long spellings, one or two dashes). */
    private static final Set<String> VALUE_OPTIONS = Set.of("N", "name", "b", "block-size", "t", "timeout", "C",
            "connections", "B", "size", "F", "certfile", "K", "keyfile", "A", "cacertfile", "H", "tlshostname", "c",
            "check", "d", "disconnect");

    /** Runs a command: the exit status and everything it printed (stdout and stderr). */
    interface Runner {
        Result run(List<String> command, Duration timeout) throws IOException;
    }

    record Result(int exit, String output) {
    }

    /**
     * Which export an attach is for, and how to name it in messages.
     *
     * @param state the node's state of the resource, for a refusal: nbd-client cuts the server's
     *              message at 149 characters, so where the Primary is comes from here
     *              ("beta is Secondary, disk UpToDate; the Primary is alpha, nbd://...")
     */
    record Target(String node, String resource, String host, int port, String state) {
        Target(String node, String resource, String host, int port) {
            this(node, resource, host, port, null);
        }

        String who() {
            return resource + " on " + node;
        }
    }

    /** What a verb did: the device now attached (or null) and the message for the admin. */
    record Outcome(String device, String message) {
    }

    private static NbdAttach system;

    private final Path sysBlock;
    private final Path proc;
    private final Runner runner;
    private final Duration readyTimeout;
    private final Object lock = new Object();

    NbdAttach(Path sysBlock, Path proc, Runner runner, Duration readyTimeout) {
        this.sysBlock = sysBlock;
        this.proc = proc;
        this.runner = runner;
        this.readyTimeout = readyTimeout;
    }

    /** The real one: /sys/block, /proc, nbd-client and modprobe from the PATH or /usr/sbin, /sbin. */
    static synchronized NbdAttach system() {
        if (system == null) {
            system = new NbdAttach(Path.of("/sys/block"), Path.of("/proc"), NbdAttach::exec, Duration.ofSeconds(20));
        }
        return system;
    }

    // ---- the verbs on a node's resource

    String attach(ReplicationNode node, Resource r, String requested) throws EngineException {
        Target t = target(node, r);
        if (!r.isUp()) {
            throw new EngineException(EngineException.Code.STATE, t.who() + ": cannot attach: the resource is down"
                    + " (replctl up " + r.name() + ")");
        }
        synchronized (lock) {
            Outcome o = attach(t, r.device(), requested);
            r.setDevice(o.device());
            return o.message();
        }
    }

    String detach(ReplicationNode node, Resource r) throws EngineException {
        Target t = target(node, r);
        synchronized (lock) {
            Outcome o = detach(t, r.device(), false);
            r.setDevice(o.device());
            return o.message();
        }
    }

    /** Detaches every attached device of the node, mounted or not (the daemon is stopping). */
    void detachAll(ReplicationNode node) {
        synchronized (lock) {
            for (Resource r : node.resources()) {
                if (r.device() == null) {
                    continue;
                }
                try {
                    Outcome o = detach(target(node, r), r.device(), true);
                    r.setDevice(o.device());
                    LOG.info("{}", o.message());
                } catch (EngineException e) {
                    LOG.error("{}", e.getMessage());
                }
            }
        }
    }

    private static Target target(ReplicationNode node, Resource r) {
        HostPort nbd = node.self().nbd();
        return new Target(node.self().name(), r.name(), connectHost(nbd.host()), nbd.port(), state(node, r));
    }

    /** "beta is Secondary, disk UpToDate; the Primary is alpha, nbd://10.99.0.1:10809/r0". */
    static String state(ReplicationNode node, Resource r) {
        StringBuilder b = new StringBuilder(node.self().name() + " is " + r.role().drbdName() + ", disk "
                + r.disk().drbdName());
        Object peers = r.status().get("peers");
        if (peers instanceof List<?> list) {
            for (Object o : list) {
                if (o instanceof java.util.Map<?, ?> p && "Primary".equals(p.get("peer_role"))) {
                    String peer = String.valueOf(p.get("peer"));
                    b.append("; the Primary is ").append(peer);
                    node.config().node(peer).ifPresent(n -> b.append(", nbd://").append(n.nbd()).append('/')
                            .append(r.name()));
                }
            }
        }
        return b.toString();
    }

    /** The address nbd-client connects to for a listen address: a wildcard means loopback. */
    static String connectHost(String listenHost) {
        return switch (listenHost) {
            case "0.0.0.0", "*", "" -> "127.0.0.1";
            case "::", "[::]" -> "::1";
            default -> listenHost;
        };
    }

    // ---- the work, on plain values (tested against a fake /sys/block and a fake nbd-client)

    Outcome attach(Target t, String current, String requested) throws EngineException {
        if (requested != null && !DEVICE.matcher(requested).matches()) {
            throw new EngineException(EngineException.Code.BAD_REQUEST, t.who() + ": '" + requested
                    + "' is not an NBD device (expected /dev/nbdN)");
        }
        if (current != null) {
            if (connected(current)) {
                if (requested == null || requested.equals(current)) {
                    return new Outcome(current, t.who() + ": already attached to " + current);
                }
                throw new EngineException(EngineException.Code.STATE, t.who() + ": already attached to " + current
                        + ", not " + requested + " (replctl detach " + t.resource() + " first)");
            }
            LOG.warn("{}: {} was recorded as attached but the kernel no longer has it connected", t.who(), current);
        }
        Optional<String> adopted = findAttached(t);
        if (adopted.isPresent() && (requested == null || requested.equals(adopted.get()))) {
            return new Outcome(adopted.get(), t.who() + ": already attached to " + adopted.get()
                    + " (connected by an earlier run of the daemon)");
        }
        if (adopted.isPresent()) {
            throw new EngineException(EngineException.Code.STATE, t.who() + ": already attached to " + adopted.get()
                    + ", not " + requested + " (replctl detach " + t.resource() + " first)");
        }
        loadModule(t);
        String dev;
        if (requested != null) {
            dev = requested;
            if (!Files.isDirectory(sys(dev))) {
                throw new EngineException(EngineException.Code.BAD_REQUEST, t.who() + ": no such NBD device "
                        + dev + " (" + sys(dev) + " does not exist; the nbd module has " + devices().size()
                        + " devices)");
            }
            if (!free(dev)) {
                throw new EngineException(EngineException.Code.IN_USE, t.who() + ": " + dev + " is in use"
                        + owner(dev));
            }
        } else {
            dev = firstFree().orElseThrow(() -> new EngineException(EngineException.Code.STATE, t.who()
                    + ": no free NBD device (all " + devices().size() + " /dev/nbdN are connected; load the nbd"
                    + " module with more, e.g. nbds_max=64)"));
        }
        List<String> cmd = connectCommand(t, dev);
        LOG.info("{}: attaching {}: {}", t.who(), dev, String.join(" ", cmd));
        Result res = run(t, dev, cmd, Duration.ofSeconds(30));
        if (res.exit() != 0) {
            if (res.output().contains("not allowed by server policy")) {
                throw new EngineException(EngineException.Code.STATE, t.who() + ": attach refused"
                        + (t.state() == null ? "" : " (" + t.state() + ")") + ": nbd-client " + dev + ": "
                        + oneLine(res.output()));
            }
            throw new EngineException(EngineException.Code.IO, t.who() + ": attaching " + dev
                    + " failed: nbd-client exited " + res.exit() + ": " + oneLine(res.output()));
        }
        long deadline = System.nanoTime() + readyTimeout.toNanos();
        while (sizeSectors(dev) <= 0) {
            if (System.nanoTime() > deadline) {
                Result undo = runQuietly(List.of(tool("nbd-client"), "-d", dev));
                throw new EngineException(EngineException.Code.IO, t.who() + ": " + dev + " has no size "
                        + readyTimeout.toSeconds() + " s after nbd-client connected it (nbd-client said: "
                        + oneLine(res.output()) + "); disconnected it again"
                        + (undo.exit() == 0 ? "" : " (nbd-client -d: " + oneLine(undo.output()) + ")"));
            }
            sleep(50);
        }
        LOG.info("{}: attached to {} ({} bytes)", t.who(), dev, sizeSectors(dev) * 512);
        return new Outcome(dev, t.who() + ": attached to " + dev);
    }

    /**
     * @param force detach even when the device is mounted or held (the daemon is stopping)
     */
    Outcome detach(Target t, String current, boolean force) throws EngineException {
        String dev = current;
        if (dev == null) {
            dev = findAttached(t).orElse(null);
            if (dev == null) {
                return new Outcome(null, t.who() + ": not attached");
            }
        }
        if (!connected(dev)) {
            return new Outcome(null, t.who() + ": " + dev + " was no longer connected; forgot it");
        }
        String use = inUse(dev);
        if (use != null) {
            if (!force) {
                throw new EngineException(EngineException.Code.IN_USE, t.who() + ": " + dev + " is in use: " + use
                        + "; stop using it first");
            }
            LOG.warn("{}: detaching {} although it is in use ({}): the daemon is stopping", t.who(), dev, use);
        }
        Optional<Long> client = pid(dev);
        List<String> cmd = List.of(tool("nbd-client"), "-d", dev);
        LOG.info("{}: detaching {}: {}", t.who(), dev, String.join(" ", cmd));
        Result res = run(t, dev, cmd, Duration.ofSeconds(30));
        if (res.exit() != 0) {
            throw new EngineException(EngineException.Code.IO, t.who() + ": detaching " + dev
                    + " failed: nbd-client -d exited " + res.exit() + ": " + oneLine(res.output()));
        }
        // Done when the kernel has let the device go, or when the nbd-client that held the connection
        // has exited: a device still open (mounted, when the daemon stops) keeps its pid and size in
        // /sys/block until it is closed, but its connection to the node is gone.
        long deadline = System.nanoTime() + readyTimeout.toNanos();
        while (connected(dev) && (client.isEmpty() || Files.exists(proc.resolve(Long.toString(client.get()))))) {
            if (System.nanoTime() > deadline) {
                throw new EngineException(EngineException.Code.IO, t.who() + ": " + dev + " is still connected "
                        + readyTimeout.toSeconds() + " s after nbd-client -d" + owner(dev));
            }
            sleep(50);
        }
        if (connected(dev)) {
            LOG.warn("{}: {} is disconnected from the node but still open (its nbd-client pid {} has exited)",
                    t.who(), dev, client.orElse(-1L));
        }
        LOG.info("{}: detached {}", t.who(), dev);
        return new Outcome(null, t.who() + ": detached " + dev);
    }

    /** {@code nbd-client -N RES -b 4096 -t 60 -persist -nonetlink HOST PORT DEV} (nbd-client 3.24). */
    static List<String> connectCommand(String nbdClient, Target t, String dev) {
        return List.of(nbdClient, "-N", t.resource(), "-b", Integer.toString(BLOCK_SIZE), "-t",
                Integer.toString(TIMEOUT_SECONDS), "-persist", "-nonetlink", t.host(), Integer.toString(t.port()), dev);
    }

    private List<String> connectCommand(Target t, String dev) {
        return connectCommand(tool("nbd-client"), t, dev);
    }

    // ---- /sys/block

    private Path sys(String dev) {
        return sysBlock.resolve(dev.substring("/dev/".length()));
    }

    /** The NBD devices the kernel has, in number order, as /dev/nbdN. */
    List<String> devices() {
        if (!Files.isDirectory(sysBlock)) {
            return List.of();
        }
        try (Stream<Path> s = Files.list(sysBlock)) {
            return s.map(p -> p.getFileName().toString()).filter(n -> n.matches("nbd\\d+"))
                    .sorted(Comparator.comparingInt(n -> Integer.parseInt(n.substring(3))))
                    .map(n -> "/dev/" + n).toList();
        } catch (IOException e) {
            return List.of();
        }
    }

    Optional<String> firstFree() {
        return devices().stream().filter(this::free).findFirst();
    }

    /** No nbd-client has it (no pid file) and it has no size. */
    boolean free(String dev) {
        return !Files.exists(sys(dev).resolve("pid")) && sizeSectors(dev) == 0;
    }

    boolean connected(String dev) {
        return Files.isDirectory(sys(dev)) && !free(dev);
    }

    /** {@code /sys/block/nbdN/size}: 512-byte sectors; 0 when unreadable. */
    long sizeSectors(String dev) {
        try {
            return Long.parseLong(Files.readString(sys(dev).resolve("size")).trim());
        } catch (IOException | NumberFormatException e) {
            return 0;
        }
    }

    private Optional<Long> pid(String dev) {
        try {
            return Optional.of(Long.parseLong(Files.readString(sys(dev).resolve("pid")).trim()));
        } catch (IOException | NumberFormatException e) {
            return Optional.empty();
        }
    }

    /** " (connected by pid N: CMDLINE)" or "". */
    private String owner(String dev) {
        Optional<Long> pid = pid(dev);
        if (pid.isEmpty()) {
            return "";
        }
        List<String> cmd = cmdline(pid.get());
        return " (connected by pid " + pid.get() + (cmd.isEmpty() ? "" : ": " + String.join(" ", cmd)) + ")";
    }

    private List<String> cmdline(long pid) {
        try {
            String raw = new String(Files.readAllBytes(proc.resolve(Long.toString(pid)).resolve("cmdline")),
                    StandardCharsets.UTF_8);
            if (raw.isEmpty()) {
                return List.of();
            }
            return Arrays.asList(raw.split("\0"));
        } catch (IOException e) {
            return List.of();
        }
    }

    /**
     * A device an nbd-client connected to this export (a previous run of the daemon attached it):
     * its pid file names a process whose command line is nbd-client with {@code -N RES} and this host
     * and port.
     */
    Optional<String> findAttached(Target t) {
        for (String dev : devices()) {
            Optional<Long> pid = pid(dev);
            if (pid.isPresent() && isClientOf(cmdline(pid.get()), t, dev)) {
                return Optional.of(dev);
            }
        }
        return Optional.empty();
    }

    /** Whether an nbd-client command line connects {@code dev} to the target's export. */
    static boolean isClientOf(List<String> argv, Target t, String dev) {
        if (argv.isEmpty() || !new File(argv.get(0)).getName().replace("@", "").startsWith("nbd-client")) {
            return false;
        }
        String name = null;
        List<String> positional = new ArrayList<>();
        for (int i = 1; i < argv.size(); i++) {
            String a = argv.get(i);
            if (a.startsWith("-") && a.length() > 1) {
                String opt = a.replaceFirst("^--?", "");
                if (VALUE_OPTIONS.contains(opt) && i + 1 < argv.size()) {
                    if (opt.equals("N") || opt.equals("name")) {
                        name = argv.get(i + 1);
                    }
                    i++;
                }
            } else {
                positional.add(a);
            }
        }
        if (!t.resource().equals(name) || positional.isEmpty() || !positional.get(0).equals(t.host())) {
            return false;
        }
        String port = "10809";
        String device = null;
        if (positional.size() >= 3) {
            port = positional.get(1);
            device = positional.get(2);
        } else if (positional.size() == 2) {
            device = positional.get(1);
        }
        return Integer.toString(t.port()).equals(port) && dev.equals(device);
    }

    /**
     * Why the device cannot go now: mounted (in /proc/mounts), swapped on (/proc/swaps) or held by
     * another block device (its holders); null when nothing uses it. Partitions count too.
     */
    String inUse(String dev) {
        Pattern self = Pattern.compile(Pattern.quote(dev) + "(p\\d+)?");
        List<String> uses = new ArrayList<>();
        for (String line : lines(proc.resolve("mounts"))) {
            String[] f = line.split(" ");
            if (f.length > 1 && self.matcher(f[0]).matches()) {
                uses.add(f[0] + " is mounted on " + f[1].replace("\\040", " "));
            }
        }
        for (String line : lines(proc.resolve("swaps"))) {
            String[] f = line.split("\\s+");
            if (f.length > 0 && self.matcher(f[0]).matches()) {
                uses.add(f[0] + " is swap space");
            }
        }
        Path holders = sys(dev).resolve("holders");
        if (Files.isDirectory(holders)) {
            try (Stream<Path> s = Files.list(holders)) {
                s.forEach(h -> uses.add("held by " + h.getFileName()));
            } catch (IOException e) {
                // no holders to report
            }
        }
        return uses.isEmpty() ? null : String.join(", ", uses);
    }

    private static List<String> lines(Path p) {
        try {
            return Files.readAllLines(p, StandardCharsets.UTF_8);
        } catch (IOException e) {
            return List.of();
        }
    }

    private void loadModule(Target t) throws EngineException {
        if (Files.isDirectory(sysBlock.resolve("nbd0"))) {
            return;
        }
        Result res;
        try {
            res = runner.run(List.of(tool("modprobe"), "nbd"), Duration.ofSeconds(30));
        } catch (IOException e) {
            throw new EngineException(EngineException.Code.IO, t.who() + ": cannot attach: the kernel has no NBD"
                    + " devices (no " + sysBlock.resolve("nbd0") + ") and modprobe nbd cannot run: " + e.getMessage(),
                    e);
        }
        if (res.exit() != 0) {
            throw new EngineException(EngineException.Code.IO, t.who() + ": cannot attach: the kernel has no NBD"
                    + " devices and modprobe nbd failed (exit " + res.exit() + "): " + oneLine(res.output()));
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!Files.isDirectory(sysBlock.resolve("nbd0"))) {
            if (System.nanoTime() > deadline) {
                throw new EngineException(EngineException.Code.IO, t.who() + ": modprobe nbd succeeded but "
                        + sysBlock.resolve("nbd0") + " did not appear");
            }
            sleep(50);
        }
    }

    // ---- running tools

    private Result run(Target t, String dev, List<String> cmd, Duration timeout) throws EngineException {
        try {
            return runner.run(cmd, timeout);
        } catch (IOException e) {
            throw new EngineException(EngineException.Code.IO, t.who() + ": " + dev + ": cannot run "
                    + cmd.get(0) + ": " + e.getMessage(), e);
        }
    }

    private Result runQuietly(List<String> cmd) {
        try {
            return runner.run(cmd, Duration.ofSeconds(30));
        } catch (IOException e) {
            return new Result(-1, e.getMessage());
        }
    }

    /** A tool from the PATH, else /usr/sbin or /sbin (a daemon's PATH may lack the sbin directories). */
    static String tool(String name) {
        List<String> dirs = new ArrayList<>();
        String path = System.getenv("PATH");
        if (path != null) {
            dirs.addAll(Arrays.asList(path.split(File.pathSeparator)));
        }
        dirs.addAll(List.of("/usr/local/sbin", "/usr/sbin", "/sbin"));
        for (String d : dirs) {
            if (!d.isEmpty()) {
                Path p = Path.of(d, name);
                if (Files.isExecutable(p)) {
                    return p.toString();
                }
            }
        }
        return name;
    }

    /**
     * Runs a command with its output collected. nbd-client -persist forks a daemon that keeps the
     * device: the daemon closes its inherited output, so only the foreground process is waited for
     * and the output read until then (plus a moment).
     */
    static Result exec(List<String> command, Duration timeout) throws IOException {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).redirectInput(ProcessBuilder.Redirect.PIPE)
                .start();
        p.getOutputStream().close();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        Thread reader = new Thread(() -> {
            try (InputStream in = p.getInputStream()) {
                byte[] b = new byte[4096];
                int n;
                while ((n = in.read(b)) >= 0) {
                    synchronized (out) {
                        out.write(b, 0, n);
                    }
                }
            } catch (IOException e) {
                // the output ends here
            }
        }, "nbd-attach-output");
        reader.setDaemon(true);
        reader.start();
        boolean done;
        try {
            done = p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS);
            reader.join(2000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            p.destroyForcibly();
            throw new IOException("interrupted");
        }
        String text;
        synchronized (out) {
            text = out.toString(StandardCharsets.UTF_8);
        }
        if (!done) {
            p.destroyForcibly();
            return new Result(-1, text + "\n(no exit after " + timeout.toSeconds() + " s; killed)");
        }
        return new Result(p.exitValue(), text);
    }

    /** nbd-client's output as one line for an error message (its progress lines dropped when it failed). */
    static String oneLine(String output) {
        List<String> keep = new ArrayList<>();
        for (String l : output.split("\\R")) {
            String s = l.strip();
            // stdout's progress "Negotiation: .." has no newline: stderr's error may follow on its line
            s = s.replaceFirst("^Negotiation: ?\\.*", "").strip();
            if (s.isEmpty() || s.matches("size = .*") || s.matches("bs=.*") || s.equals("Exiting.")) {
                continue;
            }
            keep.add(s);
        }
        String joined = String.join(" ", keep);
        return joined.isEmpty() ? "(no output)" : joined;
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
