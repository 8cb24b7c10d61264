package io.replstor.systemtest.repl;

import static org.junit.jupiter.api.Assertions.fail;

import io.replstor.systemtest.support.BackgroundProcess;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;
import java.nio.channels.FileChannel;
import java.nio.file.StandardOpenOption;

/**
 * A cluster of real {@code bin/repld} processes (resource r0): two or three data nodes (alpha id 0, beta id 1,
 * gamma id 2) and, with a cluster store, a witness; driven through {@code bin/replctl} and watched through the admin
 * API ({@code GET /status}, {@code GET /cluster}). Create it with {@link ReplFixture#cluster}; the fixture stops its
 * processes after the test.
 *
 * <p>Ports are chosen below the kernel's ephemeral range and never twice in this JVM: a port from that range (what
 * binding port 0 gives) can be taken by one of the nodes' own outgoing connections (the store opens many) before
 * the node that was given it binds it.
 */
final class ReplCluster {
    static final Duration DEFAULT_WAIT = Duration.ofSeconds(60);
    private static final long POLL_MILLIS = 100;
    private static final String LOOPBACK = "127.0.0.1";
    /** Fixed ports of the node in the namespace: nothing else listens there. */
    private static final int NS_REPLICATION_PORT = 7789;
    private static final int NS_RAFT_PORT = 7788;
    private static final int NS_NBD_PORT = 10809;

    private final ClusterSpec spec;
    private final NetNamespace namespace;
    private final Path dir;
    private final Map<String, ReplNode> nodes = new LinkedHashMap<>();
    private final Map<String, String> raft = new LinkedHashMap<>();

    ReplCluster(ReplFixture fixture, ClusterSpec spec, Path dir, NetNamespace namespace) throws IOException {
        this.spec = spec;
        this.namespace = namespace;
        this.dir = dir;
        Map<String, String> replication = new LinkedHashMap<>();
        Map<String, String> nbd = new LinkedHashMap<>();
        for (String name : spec.nodeNames()) {
            boolean data = spec.dataNodeNames().contains(name);
            if (name.equals(spec.namespaceNode())) {
                replication.put(name, namespace.nsIp() + ":" + NS_REPLICATION_PORT);
                nbd.put(name, namespace.nsIp() + ":" + NS_NBD_PORT);
                raft.put(name, namespace.nsIp() + ":" + NS_RAFT_PORT);
            } else {
                // what the namespace's node must reach binds the host end of the link
                String host = namespace != null ? namespace.hostIp() : LOOPBACK;
                if (data) {
                    replication.put(name, host + ":" + TestPorts.free(host));
                    nbd.put(name, LOOPBACK + ":" + TestPorts.free(LOOPBACK));
                }
                if (spec.hasStore()) {
                    raft.put(name, host + ":" + TestPorts.free(host));
                }
            }
        }
        List<String> names = spec.nodeNames();
        for (int id = 0; id < names.size(); id++) {
            String name = names.get(id);
            boolean witness = !spec.dataNodeNames().contains(name);
            Path config = dir.resolve(name + ".toml");
            Files.writeString(config, render(name, replication, nbd));
            nodes.put(name, new ReplNode(fixture, name, id, witness, config, witness ? null : dir.resolve(name + ".img"),
                    dir.resolve(name + ".sock"), nbd.get(name), raft.get(name),
                    name.equals(spec.namespaceNode()) ? namespace : null, spec.env(name)));
        }
    }

    /** The configuration as {@code forNode}'s copy of it says (per-node overrides applied). */
    private String render(String forNode, Map<String, String> replication, Map<String, String> nbd) {
        StringBuilder t = new StringBuilder("[cluster]\nname = \"rst\"\n");
        if (spec.hasStore()) {
            t.append("quorum = \"majority\"\nshared-secret = \"").append(spec.clusterSecret())
                    .append("\"\nlease-timeout = ").append(spec.leaseTimeoutTenths()).append('\n');
        } else {
            t.append("quorum = \"off\"\n");
        }
        List<String> names = spec.nodeNames();
        for (int id = 0; id < names.size(); id++) {
            String name = names.get(id);
            t.append("\n[[node]]\nname = \"").append(name).append("\"\nid = ").append(id).append('\n');
            if (spec.dataNodeNames().contains(name)) {
                t.append("address = \"").append(replication.get(name))
                        .append("\"\nnbd = \"").append(nbd.get(name)).append("\"\n");
            } else {
                t.append("role = \"witness\"\n");
            }
            t.append("admin = \"").append(dir.resolve(name + ".sock")).append("\"\n");
            if (spec.hasStore()) {
                t.append("raft = \"").append(raft.get(name)).append("\"\nraft-dir = \"")
                        .append(dir.resolve(name + "-raft")).append("\"\n");
            }
        }
        t.append("\n[[resource]]\nname = \"").append(ClusterSpec.RESOURCE).append("\"\n")
                .append("size = \"").append(size(spec.sizeBytes(forNode))).append("\"\n")
                .append("protocol = \"").append(spec.protocol()).append("\"\n")
                .append("connect-int = 1\nping-int = 1\nping-timeout = 10\ntimeout = 9\n");
        if (spec.secretFor(forNode) != null) {
            t.append("shared-secret = \"").append(spec.secretFor(forNode)).append("\"\n");
        }
        spec.options().forEach((k, v) -> t.append(k).append(" = ").append(v).append('\n'));
        for (String name : spec.dataNodeNames()) {
            t.append("[resource.on.").append(name).append("]\ndisk = \"").append(dir.resolve(name + ".img"))
                    .append("\"\n");
        }
        return t.toString();
    }

    private static String size(long bytes) {
        return bytes % (1L << 20) == 0 ? (bytes >> 20) + "MiB" : (bytes >> 10) + "KiB";
    }

    ReplNode alpha() {
        return nodes.get("alpha");
    }

    ReplNode beta() {
        return nodes.get("beta");
    }

    ReplNode gamma() {
        return require("gamma");
    }

    /** The witness (store clusters only). */
    ReplNode witness() {
        return require(ClusterSpec.WITNESS);
    }

    ReplNode node(String name) {
        return require(name);
    }

    /** The other data node of a two-node pair. */
    ReplNode other(ReplNode node) {
        return node == alpha() ? beta() : alpha();
    }

    /** The data nodes (those holding r0), alpha first. */
    List<ReplNode> nodes() {
        return nodes.values().stream().filter(n -> !n.isWitness()).toList();
    }

    /** Every node of the cluster file: the data nodes, then the witness. */
    List<ReplNode> members() {
        return List.copyOf(nodes.values());
    }

    long sizeBytes() {
        return spec.sizeBytes();
    }

    ClusterSpec spec() {
        return spec;
    }

    NetNamespace namespace() {
        return namespace;
    }

    /** The scratch directory of this cluster: configuration files, backing files, sockets, raft directories. */
    Path dir() {
        return dir;
    }

    private ReplNode require(String name) {
        ReplNode node = nodes.get(name);
        if (node == null) {
            throw new IllegalArgumentException("no node " + name + " in this cluster (" + nodes.keySet() + ")");
        }
        return node;
    }

    // ---- life cycle

    /** {@code replctl create-md r0} on every data node (creates the sparse backing files). */
    ReplCluster createMetadata() {
        for (ReplNode node : nodes()) {
            node.verb("create-md");
        }
        return this;
    }

    /** Starts every node (the witness too) at once and waits for each one's "ready" line. */
    ReplCluster startAll() throws IOException {
        for (ReplNode node : nodes.values()) {
            node.launch(false);
        }
        for (ReplNode node : nodes.values()) {
            node.awaitReady();
        }
        return this;
    }

    /**
     * create-md on every data node, start all nodes, wait until the data nodes are connected to each other (all
     * Inconsistent, fresh), skip the initial sync with {@code new-current-uuid --clear-bitmap} on alpha, wait until
     * all are UpToDate and in sync; with a store, also until every data node has quorum.
     */
    ReplCluster initializeUpToDate() throws IOException {
        createMetadata();
        startAll();
        awaitAll("connected, fresh metadata on all (Inconsistent, no sync)", v -> v.up()
                && "Inconsistent".equals(v.disk()) && v.peers().size() == nodes().size() - 1
                && v.peers().stream().allMatch(p -> p.connected() && "Established".equals(p.replication())),
                DEFAULT_WAIT);
        alpha().verb("new-current-uuid", "--clear-bitmap");
        awaitInSync();
        if (spec.hasStore()) {
            awaitQuorum();
        }
        return this;
    }

    /** Waits until every data node is UpToDate and connected, Established, with nothing out of sync, to each peer. */
    void awaitInSync() {
        awaitAll("all UpToDate, Connected, Established, nothing out of sync",
                v -> "UpToDate".equals(v.disk()) && v.allPeersInSync(), DEFAULT_WAIT);
    }

    /**
     * Stops every running node with SIGTERM; each must exit 0. With a store, a Primary goes first, while the others
     * still make a majority that records its demotion; then the other data nodes, then the witness.
     */
    void stopAll() {
        for (ReplNode node : stopOrder()) {
            if (node.running()) {
                node.stop();
            }
        }
    }

    List<String> stopAllForCleanup() {
        List<String> problems = new ArrayList<>();
        for (ReplNode node : stopOrder()) {
            problems.addAll(node.stopForCleanup());
        }
        return problems;
    }

    /** File order; with a store, the nodes that say they are Primary first. */
    private List<ReplNode> stopOrder() {
        List<ReplNode> order = new ArrayList<>(nodes.values());
        if (spec.hasStore()) {
            List<ReplNode> primaries = new ArrayList<>();
            for (ReplNode node : nodes()) {
                try {
                    if (node.running() && !node.isSuspended() && "Primary".equals(node.status().role())) {
                        primaries.add(node);
                    }
                } catch (IOException e) {
                    // not answering: stopped in file order
                }
            }
            order.removeAll(primaries);
            order.addAll(0, primaries);
        }
        return order;
    }

    void printLogTails(int maxChars) {
        for (ReplNode node : nodes.values()) {
            for (BackgroundProcess run : node.runs()) {
                System.out.println("===== " + node.name() + ": repld pid " + run.pid() + " (log " + run.logFile()
                        + ") =====\n" + ReplFixture.tail(run.log(), maxChars) + "\n===== end of " + node.name()
                        + " log =====");
            }
        }
    }

    // ---- the cluster store

    /** Waits until every running data node's r0 reports quorum (its lease in the store runs). */
    void awaitQuorum() {
        awaitAll("quorum in the cluster store on every data node", v -> v.quorum() && v.leaseValid(), DEFAULT_WAIT);
    }

    /**
     * Polls {@code GET /cluster} on the running members, in file order, until one answers from the store itself (not
     * stale, a leader known) and {@code condition} holds; fails with the last answers after {@code limit}.
     */
    ClusterView awaitCluster(String what, Predicate<ClusterView> condition, Duration limit) {
        long deadline = System.nanoTime() + limit.toNanos();
        Map<String, String> last = new LinkedHashMap<>();
        while (true) {
            for (ReplNode node : nodes.values()) {
                if (!node.running() || node.isSuspended()) {
                    continue;
                }
                try {
                    ClusterView v = node.cluster();
                    last.put(node.name(), v.toString());
                    if (!v.stale() && v.leader() != null && condition.test(v)) {
                        return v;
                    }
                } catch (IOException e) {
                    last.put(node.name(), node.name() + ": admin API: " + e);
                }
            }
            if (System.nanoTime() > deadline) {
                fail("timed out after " + limit.toSeconds() + " s waiting for the cluster store: " + what
                        + "\nlast GET /cluster answers:\n" + String.join("\n", last.values()));
            }
            ReplNode.sleep(POLL_MILLIS);
        }
    }

    ClusterView awaitCluster(String what, Predicate<ClusterView> condition) {
        return awaitCluster(what, condition, DEFAULT_WAIT);
    }

    /** The store's current Raft leader, as a running member's linearizable {@code GET /cluster} names it. */
    ReplNode leader() {
        return node(awaitCluster("a leader", v -> nodes.containsKey(v.leader())).leader());
    }

    // ---- waiting for states

    // ---- waiting for states

    /** Polls {@code node}'s status until {@code condition} holds; fails with the last status after {@code limit}. */
    ResourceView await(ReplNode node, String what, Predicate<ResourceView> condition, Duration limit) {
        long deadline = System.nanoTime() + limit.toNanos();
        String last = "(no answer yet)";
        while (true) {
            if (!node.running()) {
                fail(node.name() + " is not running while waiting for: " + what + "\nlast status: " + last
                        + "\nlog:\n" + ReplFixture.tail(node.log(), 8192));
            }
            try {
                ResourceView v = node.status();
                last = v.toString();
                if (condition.test(v)) {
                    return v;
                }
            } catch (IOException e) {
                last = "admin API: " + e;
            }
            if (System.nanoTime() > deadline) {
                fail("timed out after " + limit.toSeconds() + " s waiting for " + node.name() + ": " + what
                        + "\nlast status: " + last);
            }
            ReplNode.sleep(POLL_MILLIS);
        }
    }

    ResourceView await(ReplNode node, String what, Predicate<ResourceView> condition) {
        return await(node, what, condition, DEFAULT_WAIT);
    }

    /** Polls every data node (each must be running) until {@code condition} holds on all of them at once. */
    Map<String, ResourceView> awaitAll(String what, Predicate<ResourceView> condition, Duration limit) {
        long deadline = System.nanoTime() + limit.toNanos();
        Map<String, String> last = new LinkedHashMap<>();
        while (true) {
            Map<String, ResourceView> views = new LinkedHashMap<>();
            boolean all = true;
            for (ReplNode node : nodes()) {
                if (!node.running()) {
                    fail(node.name() + " is not running while waiting for: " + what + "\nlog:\n"
                            + ReplFixture.tail(node.log(), 8192));
                }
                try {
                    ResourceView v = node.status();
                    last.put(node.name(), v.toString());
                    views.put(node.name(), v);
                    all &= condition.test(v);
                } catch (IOException e) {
                    last.put(node.name(), node.name() + ": admin API: " + e);
                    all = false;
                }
            }
            if (all) {
                return views;
            }
            if (System.nanoTime() > deadline) {
                fail("timed out after " + limit.toSeconds() + " s waiting for every node: " + what
                        + "\nlast status:\n" + String.join("\n", last.values()));
            }
            ReplNode.sleep(POLL_MILLIS);
        }
    }

    // ---- data

    /** The first {@code sizeBytes} of every data node's backing file (the data areas) are identical to alpha's. */
    void assertDataAreasIdentical() throws IOException {
        for (ReplNode node : nodes()) {
            if (node != alpha()) {
                assertDataAreasIdentical(alpha().disk(), node.disk(), spec.sizeBytes());
            }
        }
    }

    static void assertDataAreasIdentical(Path a, Path b, long length) throws IOException {
        int chunk = 1 << 20;
        ByteBuffer ba = ByteBuffer.allocate(chunk);
        ByteBuffer bb = ByteBuffer.allocate(chunk);
        long firstDiff = -1;
        long differingBlocks = 0;
        try (FileChannel ca = FileChannel.open(a, StandardOpenOption.READ);
             FileChannel cb = FileChannel.open(b, StandardOpenOption.READ)) {
            for (long pos = 0; pos < length; pos += chunk) {
                int n = (int) Math.min(chunk, length - pos);
                readFully(ca, ba, pos, n, a);
                readFully(cb, bb, pos, n, b);
                if (!ba.equals(bb)) {
                    for (int block = 0; block < n; block += 4096) {
                        if (!ba.slice(block, Math.min(4096, n - block)).equals(bb.slice(block, Math.min(4096,
                                n - block)))) {
                            differingBlocks++;
                            if (firstDiff < 0) {
                                firstDiff = pos + block;
                            }
                        }
                    }
                }
            }
        }
        if (firstDiff >= 0) {
            fail("the data areas (first " + length + " bytes) of " + a + " and " + b + " differ: " + differingBlocks
                    + " 4 KiB blocks, the first at offset " + firstDiff);
        }
    }

    /** Every byte of {@code file} in [offset, offset + length) is {@code pattern}. */
    static void assertPattern(Path file, long offset, int length, byte pattern) throws IOException {
        ByteBuffer buffer = ByteBuffer.allocate(length);
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
            readFully(channel, buffer, offset, length, file);
        }
        for (int i = 0; i < length; i++) {
            if (buffer.get(i) != pattern) {
                fail(file + ": byte " + (offset + i) + " is " + String.format("0x%02x", buffer.get(i))
                        + ", expected the pattern " + String.format("0x%02x", pattern) + " in [" + offset + ", "
                        + (offset + length) + ")");
            }
        }
    }

    private static void readFully(FileChannel channel, ByteBuffer buffer, long pos, int n, Path file)
            throws IOException {
        buffer.clear().limit(n);
        while (buffer.hasRemaining()) {
            if (channel.read(buffer, pos + buffer.position()) < 0) {
                throw new IOException(file + " ends at " + (pos + buffer.position()) + ", inside the data area");
            }
        }
        buffer.flip();
    }
}
