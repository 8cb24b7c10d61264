package io.replstor.cluster.store;

import io.replstor.replicator.authority.AuthorityException;
import io.replstor.replicator.authority.RoleView;
import io.replstor.replicator.config.ClusterConfig;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.TestWatcher;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.BooleanSupplier;
import java.util.stream.Stream;

/**
 * An in-process cluster store (like Ratis' MiniRaftCluster): N members on loopback from a generated
 * cluster file, each with its own raft-dir under one temporary root, which can be killed (closed) and
 * restarted on the same directories. The root is deleted when the test passed and printed when it failed
 * (register {@link #watcher()}).
 */
final class StoreCluster implements AutoCloseable {
    /** Keeps failed tests' directories and says where they are. */
    static final class Dirs implements TestWatcher {
        private final List<Path> roots = new ArrayList<>();

        Path newRoot() throws IOException {
            Path p = Files.createTempDirectory("replstor-store-");
            roots.add(p);
            return p;
        }

        @Override
        public void testSuccessful(ExtensionContext context) {
            roots.forEach(StoreCluster::deleteTree);
        }

        @Override
        public void testFailed(ExtensionContext context, Throwable cause) {
            roots.forEach(r -> System.err.println(context.getDisplayName() + ": cluster store data kept in " + r));
        }

        @Override
        public void testAborted(ExtensionContext context, Throwable cause) {
            testFailed(context, cause);
        }
    }

    /** One node of the generated file. */
    record Node(String name, boolean witness, int raftPort, int addressPort, int nbdPort) {
        static Node of(String name, boolean witness) throws IOException {
            int[] p = freePorts(3);
            return new Node(name, witness, p[0], witness ? 0 : p[1], witness ? 0 : p[2]);
        }
    }

    private final Path root;
    private final String name;
    private final StoreTimings timings;
    private final List<Node> nodes;
    private final Map<String, ClusterStore> stores = new LinkedHashMap<>();
    private final Map<String, String> secrets = new LinkedHashMap<>();

    private StoreCluster(Path root, String name, StoreTimings timings, List<Node> nodes) {
        this.root = root;
        this.name = name;
        this.timings = timings;
        this.nodes = nodes;
    }

    /** A cluster of {@code data} data nodes and {@code witnesses} witnesses, all started. */
    static StoreCluster start(Dirs dirs, String name, List<String> data, List<String> witnesses, StoreTimings timings,
                              String secret) throws IOException {
        StoreCluster c = create(dirs, name, data, witnesses, timings);
        for (Node n : c.nodes) {
            c.secrets.put(n.name(), secret);
        }
        for (Node n : c.nodes) {
            c.restart(n.name());
        }
        return c;
    }

    static StoreCluster create(Dirs dirs, String name, List<String> data, List<String> witnesses, StoreTimings timings)
            throws IOException {
        List<Node> nodes = new ArrayList<>();
        for (String d : data) {
            nodes.add(Node.of(d, false));
        }
        for (String w : witnesses) {
            nodes.add(Node.of(w, true));
        }
        return new StoreCluster(dirs.newRoot(), name, timings, nodes);
    }

    static StoreTimings oneSecondLease() {
        return StoreTimings.fromLease(Duration.ofSeconds(1));
    }

    Path root() {
        return root;
    }

    String name() {
        return name;
    }

    List<Node> nodes() {
        return nodes;
    }

    /** The cluster file as {@code node} sees it: every node, with {@code secret} (null: none). */
    ClusterConfig config(List<Node> members, String secret) {
        StringBuilder b = new StringBuilder();
        b.append("[cluster]\nname = \"").append(name).append("\"\nlease-timeout = ")
                .append(timings.leaseTimeout().toMillis() / 100).append('\n');
        if (secret != null) {
            b.append("shared-secret = \"").append(secret).append("\"\n");
        }
        int id = 0;
        for (Node n : members) {
            b.append("\n[[node]]\nname = \"").append(n.name()).append("\"\nid = ").append(id++).append('\n');
            if (n.witness()) {
                b.append("role = \"witness\"\n");
            } else {
                b.append("address = \"127.0.0.1:").append(n.addressPort()).append("\"\nnbd = \"127.0.0.1:")
                        .append(n.nbdPort()).append("\"\n");
            }
            b.append("admin = \"").append(root.resolve(n.name() + ".sock")).append("\"\n")
                    .append("raft = \"127.0.0.1:").append(n.raftPort()).append("\"\n")
                    .append("raft-dir = \"").append(root.resolve(n.name())).append("\"\n");
        }
        b.append("\n[[resource]]\nname = \"r0\"\nsize = \"1MiB\"\n");
        for (Node n : members) {
            if (!n.witness()) {
                b.append("[resource.on.").append(n.name()).append("]\ndisk = \"")
                        .append(root.resolve(n.name() + "-r0.img")).append("\"\n");
            }
        }
        try {
            return ClusterConfig.parse(b.toString(), root.resolve("cluster.toml").toString());
        } catch (io.replstor.replicator.config.ClusterConfigException e) {
            throw new IllegalStateException(b.toString(), e);
        }
    }

    ClusterStore store(String node) {
        ClusterStore s = stores.get(node);
        if (s == null) {
            throw new IllegalStateException(node + " is not running");
        }
        return s;
    }

    /** Closes {@code node}'s store: to the others it is dead. */
    void kill(String node) {
        Optional.ofNullable(stores.remove(node)).ifPresent(ClusterStore::close);
    }

    /** Starts {@code node} again on its directories. */
    ClusterStore restart(String node) throws IOException {
        return startWith(node, config(nodes, secrets.get(node)));
    }

    /** Starts {@code node} with its own idea of the cluster file (a different secret, an extra member). */
    ClusterStore startWith(String node, ClusterConfig config) throws IOException {
        kill(node);
        ClusterStore s = ClusterStore.start(config, node, timings);
        stores.put(node, s);
        return s;
    }

    void setSecret(String node, String secret) {
        secrets.put(node, secret);
    }

    /** Waits until every running member has quorum (its renewals commit). */
    void awaitQuorum(Duration timeout) {
        await(timeout, () -> stores.values().stream().allMatch(s -> s.quorum().present()),
                () -> "quorum on every member: " + quorumStates());
    }

    String quorumStates() {
        StringBuilder b = new StringBuilder();
        stores.forEach((n, s) -> b.append(n).append(": ").append(s.quorum()).append("; "));
        return b.toString();
    }

    static void await(Duration timeout, BooleanSupplier condition, java.util.function.Supplier<String> what) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - deadline > 0) {
                throw new AssertionError("not within " + timeout.toMillis() + " ms: " + what.get());
            }
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError("interrupted", e);
            }
        }
    }

    /** The request's view, or the AuthorityException it failed with. */
    static RoleView get(java.util.concurrent.CompletableFuture<RoleView> f) throws AuthorityException {
        try {
            return f.get(30, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof AuthorityException a) {
                throw a;
            }
            throw new AssertionError(e.getCause());
        } catch (InterruptedException | TimeoutException e) {
            throw new AssertionError(e);
        }
    }

    @Override
    public void close() {
        new ArrayList<>(stores.keySet()).forEach(this::kill);
    }

    /** Ports never handed out before in this JVM. */
    private static final java.util.Set<Integer> HANDED_OUT = java.util.concurrent.ConcurrentHashMap.newKeySet();
    private static final java.util.Random PORTS = new java.util.Random();

    /**
     * {@code n} distinct free loopback ports below the kernel's ephemeral range: a port from that range
     * (what binding to port 0 gives) can be taken by any outgoing connection, the store's own many, before
     * the member binds it.
     */
    static int[] freePorts(int n) throws IOException {
        int low = 10_000;
        int high = ephemeralLow();
        int[] ports = new int[n];
        for (int i = 0; i < n; ) {
            int candidate = low + PORTS.nextInt(high - low);
            if (HANDED_OUT.contains(candidate)) {
                continue;
            }
            try (ServerSocket s = new ServerSocket(candidate, 1, InetAddress.getLoopbackAddress())) {
                HANDED_OUT.add(candidate);
                ports[i++] = s.getLocalPort();
            } catch (IOException e) {
                // in use: try another
            }
        }
        return ports;
    }

    private static int ephemeralLow() {
        try {
            String range = Files.readString(Path.of("/proc/sys/net/ipv4/ip_local_port_range")).trim();
            return Math.max(20_000, Integer.parseInt(range.split("\\s+")[0]));
        } catch (IOException | RuntimeException e) {
            return 32_768;
        }
    }

    static void deleteTree(Path root) {
        if (!Files.exists(root)) {
            return;
        }
        try (Stream<Path> s = Files.walk(root)) {
            s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException e) {
            System.err.println("cannot delete " + root + ": " + e);
        }
    }
}
