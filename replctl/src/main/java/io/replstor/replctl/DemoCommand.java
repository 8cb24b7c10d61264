package io.replstor.replctl;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.replstor.common.Sizes;
import io.replstor.replicator.config.ClusterConfig;
import io.replstor.replicator.config.NodeConfig;
import io.replstor.replicator.config.ReplicationProtocol;
import io.replstor.replicator.config.ResourceConfig;
import io.replstor.replicator.engine.MetadataSetup;
import io.replstor.replicator.meta.Metadata;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import sun.misc.Signal;

import java.io.File;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * {@code replctl demo}: a replicated cluster of 1 to 5 repld processes on this machine, in one
 * directory, plus a witness (a repld that only votes in the cluster store) for two or more data
 * nodes unless {@code --witness 0}. Generates the cluster file, creates the metadata (sparse backing
 * files), starts the daemons, waits until all are connected and the cluster store has quorum, skips
 * the initial sync (new-current-uuid --clear-bitmap) and makes the first node Primary. In the foreground it then shows a live status until Ctrl-C and
 * stops everything; with {@code --detach} it returns, and {@code replctl demo down} stops it.
 */
@Command(name = "demo", mixinStandardHelpOptions = true, subcommands = DemoCommand.Down.class,
        description = {"Run a local replicated cluster of N repld processes (resource r0), Primary on the first.",
            "Without --detach: show a live status until Ctrl-C, then stop it. With --detach: return once ready;"
                    + " stop it later with: replctl demo down --dir DIR"})
final class DemoCommand implements Callable<Integer> {
    static final String DEFAULT_DIR = "/tmp/replstor-demo";
    static final long READY_TIMEOUT_MILLIS = 60_000;
    private static final long POLL_MILLIS = 250;
    private static final int LOG_TAIL_LINES = 20;
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    /** Tests run the demo inside the test JVM, whose signal handling must stay as it is. */
    static volatile boolean handleSignals = true;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--nodes", paramLabel = "N", defaultValue = "2", description = "nodes, 1..5 (default ${DEFAULT-VALUE})")
    int nodes;

    @Option(names = "--witness", paramLabel = "0|1", description = "a witness: votes in the cluster store, holds no"
            + " disk; default 1 with two or more nodes (0 with two nodes runs quorum off: split brain is then only"
            + " detected)")
    Integer witness;

    @Option(names = "--lease-timeout", paramLabel = "TENTHS", description = "the cluster store's liveness lease in"
            + " tenths of a second, " + ClusterConfig.LEASE_TIMEOUT_MIN + ".." + ClusterConfig.LEASE_TIMEOUT_MAX
            + " (default " + ClusterConfig.LEASE_TIMEOUT_DEFAULT + "): longer means fewer renewals and a slower"
            + " failover")
    Integer leaseTenths;

    @Option(names = "--dir", paramLabel = "DIR", defaultValue = DEFAULT_DIR,
            description = "where the configuration, backing files, sockets, pid files and logs go (default"
                    + " ${DEFAULT-VALUE})")
    Path dir;

    @Option(names = "--size", paramLabel = "SIZE", defaultValue = "1GiB",
            description = "the volume size, a multiple of 4KiB (default ${DEFAULT-VALUE}); files are sparse")
    String size;

    @Option(names = "--protocol", paramLabel = "A|B|C", defaultValue = "C",
            description = "the replication protocol (default ${DEFAULT-VALUE})")
    ReplicationProtocol protocol;

    @Option(names = "--detach", description = "return once the cluster is ready and leave it running")
    boolean detach;

    @Option(names = "--json", description = "with --detach: print the nodes as JSON")
    boolean json;

    private final CountDownLatch stopRequested = new CountDownLatch(1);
    private final Map<String, Process> started = new LinkedHashMap<>();
    private DemoCluster demo;
    private ClusterConfig config;
    private PrintWriter out;
    private PrintWriter err;

    /** A node failed to start or to become ready. */
    static final class DemoFailure extends Exception {
        private static final long serialVersionUID = 1L;
        final List<String> nodes;

        DemoFailure(List<String> nodes, String message) {
            super(message, null, false, false);
            this.nodes = List.copyOf(nodes);
        }
    }

    @Override
    public Integer call() throws Exception {
        out = spec.commandLine().getOut();
        err = spec.commandLine().getErr();
        if (nodes < 1 || nodes > DemoCluster.NAMES.size()) {
            throw ReplctlException.usage("--nodes " + nodes + ": a demo has 1 to " + DemoCluster.NAMES.size()
                    + " nodes");
        }
        if (witness == null) {
            witness = nodes >= 2 ? 1 : 0;
        }
        if (witness != 0 && witness != 1) {
            throw ReplctlException.usage("--witness " + witness + ": a demo has 0 or 1 witness");
        }
        if (witness == 1 && nodes < 2) {
            throw ReplctlException.usage("--witness 1 with one node: a witness breaks ties between data nodes; with"
                    + " one it would only add a member that must be up");
        }
        if (leaseTenths != null && (leaseTenths < ClusterConfig.LEASE_TIMEOUT_MIN
                || leaseTenths > ClusterConfig.LEASE_TIMEOUT_MAX)) {
            throw ReplctlException.usage("--lease-timeout " + leaseTenths + ": tenths of a second, "
                    + ClusterConfig.LEASE_TIMEOUT_MIN + ".." + ClusterConfig.LEASE_TIMEOUT_MAX);
        }
        if (leaseTenths != null && witness == 0 && nodes == 2) {
            throw ReplctlException.usage("--lease-timeout with --witness 0: two nodes without a witness run without"
                    + " the cluster store, so there is no lease");
        }
        long sizeBytes = parseSize(size);
        demo = new DemoCluster(dir);
        demo.checkSocketPaths(nodes, witness == 1);
        List<String> running = DemoProcesses.running(demo);
        if (!running.isEmpty()) {
            throw ReplctlException.failed("a demo is already running in " + demo.dir + ": "
                    + String.join(", ", running) + "; stop it first: replctl demo down --dir " + demo.dir);
        }
        if (!demo.configIsOurs()) {
            throw ReplctlException.usage(demo.config() + " was not written by replctl demo: choose another --dir");
        }
        Path repld = DemoProcesses.locateRepld();
        Files.createDirectories(demo.dir);
        DemoProcesses.stop(demo, line -> { }); // nothing runs: this only removes stale pid files
        config = demo.writeConfig(nodes, witness == 1, sizeBytes, protocol,
                DemoCluster.freePorts(DemoCluster.portsNeeded(nodes, witness == 1)), leaseTenths);
        onSignals();
        try {
            createMetadata();
            for (NodeConfig n : config.nodes()) {
                start(repld, n);
            }
            bringUp();
        } catch (DemoFailure f) {
            fail(f);
            return ExitCodes.FAILED;
        }
        if (detach) {
            printDetached();
            return ExitCodes.OK;
        }
        printForeground();
        liveStatus();
        info("stopping the demo ...");
        boolean stopped = DemoProcesses.stop(demo, this::info);
        return stopped ? ExitCodes.OK : ExitCodes.FAILED;
    }

    static long parseSize(String text) throws ReplctlException {
        long bytes;
        try {
            bytes = Sizes.parse(text);
        } catch (IllegalArgumentException e) {
            throw ReplctlException.usage("--size: " + e.getMessage());
        }
        if (bytes <= 0 || bytes % ResourceConfig.SIZE_GRANULARITY_BYTES != 0) {
            throw ReplctlException.usage("--size " + text + ": the volume size is a positive multiple of 4KiB");
        }
        return bytes;
    }

    /** Progress for people: stdout, or stderr when stdout carries JSON. */
    private void info(String line) {
        PrintWriter w = json ? err : out;
        w.println(line);
        w.flush();
    }

    /** Ctrl-C or SIGTERM: end the live status, or abandon the start-up; either way stop the daemons. */
    private void onSignals() {
        if (!handleSignals) {
            return;
        }
        for (String s : List.of("INT", "TERM")) {
            try {
                Signal.handle(new Signal(s), sig -> stopRequested.countDown());
            } catch (IllegalArgumentException e) {
                // the signal is reserved in this JVM: keep its default
            }
        }
    }

    private boolean stopping() {
        return stopRequested.getCount() == 0;
    }

    private void createMetadata() throws DemoFailure, IOException {
        ResourceConfig res = config.resource(DemoCluster.RESOURCE).orElseThrow();
        for (NodeConfig n : config.dataNodes()) {
            Path image = demo.image(n.name());
            Files.createDirectories(image.getParent());
            Files.deleteIfExists(image); // a new demo starts from empty volumes
            try (Metadata md = MetadataCommands.run(() -> MetadataSetup.create(config, n, res,
                    res.on(n.name()).orElseThrow(), false, line -> { }))) {
                info(n.name() + ": created " + image + " (" + Sizes.format(md.geometry().dataSizeBytes())
                        + " of data, sparse) with fresh metadata");
            } catch (ReplctlException e) {
                throw new DemoFailure(List.of(), "node " + n.name() + ": create-md failed: " + e.getMessage());
            }
        }
    }

    private void start(Path repld, NodeConfig n) throws DemoFailure {
        ProcessBuilder pb = new ProcessBuilder(repld.toString(), "--config", demo.config().toString(), "--node",
                n.name());
        pb.redirectErrorStream(true);
        pb.redirectOutput(demo.log(n.name()).toFile());
        pb.redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
        try {
            Process p = pb.start();
            started.put(n.name(), p);
            Files.writeString(demo.pidFile(n.name()), p.pid() + "\n");
            info(n.name() + ": started repld, pid " + p.pid() + ", log " + demo.log(n.name()));
        } catch (IOException e) {
            throw new DemoFailure(List.of(n.name()), "cannot start " + repld + ": " + e.getMessage());
        }
    }

    /** Connected, initial sync skipped, UpToDate everywhere, Primary on the first node. */
    private void bringUp() throws DemoFailure {
        String first = config.nodes().get(0).name();
        String r0 = DemoCluster.RESOURCE;
        waitFor("all nodes up and connected", this::notConnected);
        if (nodes > 1) {
            post(first, "new-current-uuid", "{\"clear_bitmap\":true}");
            waitFor("all disks UpToDate", this::notUpToDate);
            post(first, "primary", "{}");
        } else {
            post(first, "primary", "{\"force\":true}"); // one node: nobody to agree with on UpToDate
        }
        info("ready: " + r0 + " is Primary on " + first);
    }

    private void post(String node, String verb, String body) throws DemoFailure {
        Path socket = config.node(node).orElseThrow().admin();
        AdminClient.Response r;
        try {
            r = AdminClient.post(socket, "/resources/" + DemoCluster.RESOURCE + "/" + verb, body,
                    AdminClient.VERB_TIMEOUT_MILLIS);
        } catch (AdminClient.AdminException e) {
            throw new DemoFailure(List.of(node), verb + ": " + e.getMessage());
        }
        if (!r.ok()) {
            throw new DemoFailure(List.of(node), verb + " " + body + " was refused: " + r.errorMessage(socket));
        }
        JsonNode j = r.json();
        info(node + ": " + (j != null && j.hasNonNull("message") ? j.get("message").asText() : verb + " done"));
    }

    /** What a node still lacks, or null when it is ready. */
    interface Readiness {
        String pending(String node, JsonNode resource) throws DemoFailure;
    }

    private String notConnected(String node, JsonNode res) throws DemoFailure {
        if (!res.path("up").asBoolean(false)) {
            if (res.hasNonNull("error")) {
                throw new DemoFailure(List.of(node), DemoCluster.RESOURCE + " did not come up: "
                        + res.get("error").asText());
            }
            return DemoCluster.RESOURCE + " not up";
        }
        int connected = 0;
        for (JsonNode p : res.path("peers")) {
            if ("Connected".equals(p.path("connection").asText())) {
                connected++;
            }
        }
        if (connected < nodes - 1) {
            return connected + "/" + (nodes - 1) + " peers connected";
        }
        if (res.path("cluster_store").asBoolean(false) && !res.path("quorum").asBoolean(false)) {
            return "no quorum in the cluster store yet (" + res.path("quorum_detail").asText() + ")";
        }
        return null;
    }

    private String notUpToDate(String node, JsonNode res) throws DemoFailure {
        String pending = notConnected(node, res);
        if (pending != null) {
            return pending;
        }
        String disk = res.path("disk").asText();
        if (!"UpToDate".equals(disk)) {
            return "disk " + disk;
        }
        for (JsonNode p : res.path("peers")) {
            if (!"UpToDate".equals(p.path("peer_disk").asText())) {
                return "peer " + p.path("peer").asText() + " disk " + p.path("peer_disk").asText();
            }
        }
        return null;
    }

    /** Polls every node until {@code check} is satisfied everywhere; a progress line on stderr. */
    private void waitFor(String goal, Readiness check) throws DemoFailure {
        long start = System.nanoTime();
        long deadline = start + TimeUnit.MILLISECONDS.toNanos(READY_TIMEOUT_MILLIS);
        String lastProgress = "";
        long lastPrinted = 0;
        while (true) {
            Map<String, String> pending = new LinkedHashMap<>();
            for (NodeConfig n : config.nodes()) {
                Process p = started.get(n.name());
                if (p != null && !p.isAlive()) {
                    throw new DemoFailure(List.of(n.name()), "repld exited with status " + p.exitValue());
                }
                String why;
                if (n.isWitness()) {
                    why = status(n) == null ? "not answering yet" : null;
                } else {
                    JsonNode res = resource(n);
                    why = res == null ? "not answering yet" : check.pending(n.name(), res);
                }
                if (why != null) {
                    pending.put(n.name(), why);
                }
            }
            if (pending.isEmpty()) {
                if (lastPrinted != 0) {
                    err.println("  " + goal + " after " + (System.nanoTime() - start) / 1_000_000_000 + " s");
                    err.flush();
                }
                return;
            }
            long now = System.nanoTime();
            String progress = pending.toString();
            if (!progress.equals(lastProgress) || now - lastPrinted > 5_000_000_000L) {
                err.printf("  waiting for %s (%d s): %s%n", goal, (now - start) / 1_000_000_000,
                        String.join("; ", pending.entrySet().stream().map(e -> e.getKey() + " " + e.getValue())
                                .toList()));
                err.flush();
                lastProgress = progress;
                lastPrinted = now;
            }
            if (now > deadline) {
                throw new DemoFailure(new ArrayList<>(pending.keySet()), "not " + goal + " after "
                        + READY_TIMEOUT_MILLIS / 1000 + " s: " + pending);
            }
            if (stopping()) {
                throw new DemoFailure(List.of(), "interrupted while waiting for " + goal);
            }
            try {
                stopRequested.await(POLL_MILLIS, TimeUnit.MILLISECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new DemoFailure(List.of(), "interrupted");
            }
        }
    }

    /** The node's r0 status, or null if it does not answer (yet) or does not list r0. */
    private JsonNode resource(NodeConfig n) {
        JsonNode s = status(n);
        if (s == null) {
            return null;
        }
        for (JsonNode res : s.path("resources")) {
            if (DemoCluster.RESOURCE.equals(res.path("name").asText())) {
                return res;
            }
        }
        return null;
    }

    private static JsonNode cluster(NodeConfig n) {
        try {
            AdminClient.Response r = AdminClient.get(n.admin(), "/cluster", 2_000);
            return r.ok() ? r.json() : null;
        } catch (AdminClient.AdminException e) {
            return null;
        }
    }

    private static JsonNode status(NodeConfig n) {
        try {
            AdminClient.Response r = AdminClient.get(n.admin(), "/status", 2_000);
            return r.ok() ? r.json() : null;
        } catch (AdminClient.AdminException e) {
            return null;
        }
    }

    /** Names the failed nodes with their log tails, stops what was started. */
    private void fail(DemoFailure f) throws IOException {
        err.println("replctl: demo: " + (f.nodes.isEmpty() ? "" : "node " + String.join(", ", f.nodes) + ": ")
                + f.getMessage());
        for (String n : f.nodes) {
            Path log = demo.log(n);
            List<String> tail = tail(log, LOG_TAIL_LINES);
            err.println("--- " + n + ": last " + tail.size() + " lines of " + log + " ---");
            tail.forEach(l -> err.println("  " + l));
        }
        err.println("stopping the demo (the logs stay in " + demo.dir + ")");
        err.flush();
        DemoProcesses.stop(demo, line -> {
            err.println("  " + line);
            err.flush();
        });
    }

    static List<String> tail(Path file, int lines) {
        try {
            List<String> all = Files.readAllLines(file, StandardCharsets.UTF_8);
            return all.subList(Math.max(0, all.size() - lines), all.size());
        } catch (IOException e) {
            return List.of("(cannot read " + file + ": " + e.getMessage() + ")");
        }
    }

    private String uri(NodeConfig n) {
        return "nbd://" + n.nbd() + "/" + DemoCluster.RESOURCE;
    }

    private static String replctl() {
        String home = DemoProcesses.env.apply("REPLSTOR_HOME");
        return home == null || home.isBlank() ? "replctl" : Path.of(home, "bin", "replctl").toString();
    }

    private void printDetached() throws IOException {
        if (json) {
            ObjectNode root = JSON.createObjectNode();
            root.put("dir", demo.dir.toString());
            root.put("config", demo.config().toString());
            ArrayNode arr = root.putArray("nodes");
            for (NodeConfig n : config.nodes()) {
                ObjectNode o = arr.addObject();
                o.put("name", n.name());
                o.put("role", n.role().configName());
                o.put("pid", started.get(n.name()).pid());
                o.put("admin", n.admin().toString());
                if (!n.isWitness()) {
                    o.put("nbd", uri(n));
                }
                o.put("config", demo.config().toString());
                o.put("log", demo.log(n.name()).toString());
            }
            out.println(JSON.writeValueAsString(root));
            out.flush();
            return;
        }
        out.printf("replstor demo: %d node(s) in %s, %s (%s, protocol %s) Primary on %s%n", nodes, demo.dir,
                DemoCluster.RESOURCE, Sizes.format(config.resources().get(0).sizeBytes()), protocol,
                config.nodes().get(0).name());
        for (NodeConfig n : config.nodes()) {
            out.printf("  %-8s pid %-7d %s  admin %s  log %s%n", n.name(), started.get(n.name()).pid(),
                    n.isWitness() ? "(witness: votes, no disk)" : uri(n), n.admin(), demo.log(n.name()));
        }
        if (config.hasStore()) {
            out.printf("cluster: %s cluster status --config %s --node %s%n", replctl(), demo.config(),
                    config.nodes().get(0).name());
        }
        out.printf("status: %s status --config %s --node %s%n", replctl(), demo.config(), config.nodes().get(0).name());
        out.printf("stop:   %s demo down --dir %s%n", replctl(), demo.dir);
        out.flush();
    }

    private void printForeground() {
        NodeConfig first = config.nodes().get(0);
        String cfg = "--config " + demo.config();
        out.println();
        out.printf("replstor demo: %d node(s) in %s, %s Primary on %s%n", nodes, demo.dir, DemoCluster.RESOURCE,
                first.name());
        for (NodeConfig n : config.nodes()) {
            out.printf("  %-8s %s%n", n.name(), n.isWitness() ? "(witness: votes in the cluster store, no disk)"
                    : uri(n));
        }
        out.println("try:");
        out.printf("  inspect:   nbdinfo %s%n", uri(first));
        out.printf("  write:     qemu-io -f raw %s -c 'write -P 0xab 0 1M' -c 'read -P 0xab 0 1M'%n", uri(first));
        out.printf("  benchmark: fio --name=demo --ioengine=nbd --uri=%s --rw=randwrite --bs=4k --iodepth=32"
                + " --size=256M%n", uri(first));
        out.printf("  status:    %s status %s --node %s%n", replctl(), cfg, first.name());
        out.printf("  events:    %s events %s --node %s%n", replctl(), cfg, first.name());
        if (config.hasStore()) {
            out.printf("  cluster:   %s cluster status %s --node %s%n", replctl(), cfg, first.name());
        }
        if (nodes > 1) {
            String second = config.nodes().get(1).name();
            out.printf("  switch:    %s secondary r0 %s --node %s && %s primary r0 %s --node %s%n", replctl(), cfg,
                    first.name(), replctl(), cfg, second);
        }
        out.println("Ctrl-C stops the demo.");
        out.println();
        out.flush();
    }

    /** Every second, every node's status, until Ctrl-C. */
    private void liveStatus() throws InterruptedException {
        boolean tty = System.console() != null;
        do {
            StringBuilder b = new StringBuilder();
            if (tty) {
                b.append("\033[H\033[2J");
            }
            b.append("replstor demo in ").append(demo.dir).append(" (Ctrl-C stops it)\n");
            for (NodeConfig n : config.nodes()) {
                Process p = started.get(n.name());
                b.append("\n== ").append(n.name()).append(" (pid ").append(p.pid()).append(", ")
                        .append(n.isWitness() ? "witness" : uri(n)).append(")\n");
                if (!p.isAlive()) {
                    b.append("  repld exited with status ").append(p.exitValue()).append("; log ")
                            .append(demo.log(n.name())).append('\n');
                    continue;
                }
                if (n.isWitness()) {
                    JsonNode c = cluster(n);
                    b.append(c == null ? "  not answering\n" : ClusterCommand.Status.format(c).indent(2));
                    continue;
                }
                JsonNode s = status(n);
                b.append(s == null ? "  not answering\n" : StatusFormat.format(s).indent(2));
            }
            if (!tty) {
                b.append('\n');
            }
            out.print(b);
            out.flush();
        } while (!stopRequested.await(1, TimeUnit.SECONDS));
    }

    @Command(name = "down", mixinStandardHelpOptions = true,
            description = "Stop the demo daemons of DIR (SIGTERM, SIGKILL after 15 s) and remove their pid files.")
    static final class Down implements Callable<Integer> {
        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Option(names = "--dir", paramLabel = "DIR", defaultValue = DEFAULT_DIR,
                description = "the demo directory (default ${DEFAULT-VALUE})")
        Path dir;

        @Override
        public Integer call() throws Exception {
            PrintWriter out = spec.commandLine().getOut();
            DemoCluster demo = new DemoCluster(dir);
            if (DemoProcesses.pidFiles(demo.dir).isEmpty()) {
                out.println("no demo daemons in " + demo.dir);
                out.flush();
                return ExitCodes.OK;
            }
            boolean ok = DemoProcesses.stop(demo, line -> {
                out.println(line);
                out.flush();
            });
            if (!ok) {
                throw ReplctlException.failed("some demo daemons in " + demo.dir + " could not be stopped");
            }
            return ExitCodes.OK;
        }
    }
}
