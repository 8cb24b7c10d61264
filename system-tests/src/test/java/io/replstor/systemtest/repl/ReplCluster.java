package io.replstor.systemtest.repl;

import static org.junit.jupiter.api.Assertions.fail;

import io.replstor.systemtest.support.BackgroundProcess;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
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
 * A two-node cluster (alpha id 0, beta id 1, resource r0) made of real {@code bin/repld} processes, driven through
 * {@code bin/replctl} and watched through the admin API. Create it with {@link ReplFixture#cluster}; the fixture
 * stops its processes after the test.
 */
final class ReplCluster {
    static final Duration DEFAULT_WAIT = Duration.ofSeconds(60);
    private static final long POLL_MILLIS = 100;
    private static final String LOOPBACK = "127.0.0.1";

    private final ClusterSpec spec;
    private final NetNamespace namespace;
    private final Map<String, ReplNode> nodes = new LinkedHashMap<>();

    ReplCluster(ReplFixture fixture, ClusterSpec spec, Path dir, NetNamespace namespace) throws IOException {
        this.spec = spec;
        this.namespace = namespace;
        Map<String, String> replication = new LinkedHashMap<>();
        Map<String, String> nbd = new LinkedHashMap<>();
        for (String name : ClusterSpec.NODES) {
            if (name.equals(spec.namespaceNode())) {
                replication.put(name, namespace.nsIp() + ":7789");
                nbd.put(name, namespace.nsIp() + ":10809");
            } else {
                String host = namespace != null ? namespace.hostIp() : LOOPBACK;
                replication.put(name, host + ":" + freeLoopbackPort());
                nbd.put(name, LOOPBACK + ":" + freeLoopbackPort());
            }
        }
        for (int id = 0; id < ClusterSpec.NODES.length; id++) {
            String name = ClusterSpec.NODES[id];
            Path config = dir.resolve(name + ".toml");
            Files.writeString(config, render(name, dir, replication, nbd));
            nodes.put(name, new ReplNode(fixture, name, id, config, dir.resolve(name + ".img"),
                    dir.resolve(name + ".sock"), nbd.get(name),
                    name.equals(spec.namespaceNode()) ? namespace : null, spec.env(name)));
        }
    }

    /** The configuration as {@code forNode}'s copy of it says (per-node overrides applied). */
    private String render(String forNode, Path dir, Map<String, String> replication, Map<String, String> nbd) {
        StringBuilder t = new StringBuilder("[cluster]\nname = \"rst\"\n");
        for (int id = 0; id < ClusterSpec.NODES.length; id++) {
            String name = ClusterSpec.NODES[id];
            t.append("\n[[node]]\nname = \"").append(name).append("\"\nid = ").append(id)
                    .append("\naddress = \"").append(replication.get(name))
                    .append("\"\nnbd = \"").append(nbd.get(name))
                    .append("\"\nadmin = \"").append(dir.resolve(name + ".sock")).append("\"\n");
        }
        t.append("\n[[resource]]\nname = \"").append(ClusterSpec.RESOURCE).append("\"\n")
                .append("size = \"").append(size(spec.sizeBytes(forNode))).append("\"\n")
                .append("protocol = \"").append(spec.protocol()).append("\"\n")
                .append("connect-int = 1\nping-int = 1\nping-timeout = 10\ntimeout = 9\n");
        if (spec.secretFor(forNode) != null) {
            t.append("shared-secret = \"").append(spec.secretFor(forNode)).append("\"\n");
        }
        spec.options().forEach((k, v) -> t.append(k).append(" = ").append(v).append('\n'));
        for (String name : ClusterSpec.NODES) {
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

    ReplNode other(ReplNode node) {
        return node == alpha() ? beta() : alpha();
    }

    List<ReplNode> nodes() {
        return List.copyOf(nodes.values());
    }

    long sizeBytes() {
        return spec.sizeBytes();
    }

    NetNamespace namespace() {
        return namespace;
    }

    // ---- life cycle

    /** {@code replctl create-md r0} on every node (creates the sparse backing files). */
    ReplCluster createMetadata() {
        for (ReplNode node : nodes.values()) {
            node.verb("create-md");
        }
        return this;
    }

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
     * create-md on both, start both, wait until they are connected (both Inconsistent, fresh), skip the initial
     * sync with {@code new-current-uuid --clear-bitmap} on alpha, wait until both are UpToDate and in sync.
     */
    ReplCluster initializeUpToDate() throws IOException {
        createMetadata();
        startAll();
        awaitAll("connected, fresh metadata on both (Inconsistent, no sync)", v -> v.up()
                && "Inconsistent".equals(v.disk()) && v.peer().connected()
                && "Established".equals(v.peer().replication()), DEFAULT_WAIT);
        alpha().verb("new-current-uuid", "--clear-bitmap");
        awaitInSync();
        return this;
    }

    /** Waits until both nodes are UpToDate, connected, Established, with nothing out of sync. */
    void awaitInSync() {
        awaitAll("both UpToDate, Connected, Established, nothing out of sync",
                v -> "UpToDate".equals(v.disk()) && v.peer().inSync(), DEFAULT_WAIT);
    }

    /** Stops every running node with SIGTERM; each must exit 0. */
    void stopAll() {
        for (ReplNode node : nodes.values()) {
            if (node.running()) {
                node.stop();
            }
        }
    }

    List<String> stopAllForCleanup() {
        List<String> problems = new ArrayList<>();
        for (ReplNode node : nodes.values()) {
            problems.addAll(node.stopForCleanup());
        }
        return problems;
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

    /** Polls every running node until {@code condition} holds on all of them at once. */
    Map<String, ResourceView> awaitAll(String what, Predicate<ResourceView> condition, Duration limit) {
        long deadline = System.nanoTime() + limit.toNanos();
        Map<String, String> last = new LinkedHashMap<>();
        while (true) {
            Map<String, ResourceView> views = new LinkedHashMap<>();
            boolean all = true;
            for (ReplNode node : nodes.values()) {
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

    /** The first {@code sizeBytes} of both backing files (the data areas) are identical. */
    void assertDataAreasIdentical() throws IOException {
        assertDataAreasIdentical(alpha().disk(), beta().disk(), spec.sizeBytes());
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

    private static int freeLoopbackPort() throws IOException {
        try (ServerSocket socket = new ServerSocket()) {
            socket.setReuseAddress(true);
            socket.bind(new InetSocketAddress(LOOPBACK, 0));
            return socket.getLocalPort();
        }
    }
}
