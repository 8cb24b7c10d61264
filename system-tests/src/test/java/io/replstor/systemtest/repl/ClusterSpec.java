package io.replstor.systemtest.repl;

import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What a test cluster looks like: two nodes, alpha (id 0) and beta (id 1), one resource {@code r0}. Timers are
 * fast (connect-int 1 s, ping-int 1 s) so that losses and reconnects take a second or two; the ack and ping
 * timeouts are 0.9 s and 1 s rather than DRBD's 0.5 s ping-timeout, because a test machine with two busy cores
 * and three JVMs starting stalls a node for half a second now and then, and a spurious disconnect would turn
 * replicated writes into resync traffic that several tests count exactly. Each node
 * gets its own copy of the configuration file; they are identical unless a per-node override
 * ({@link #nodeSize}, {@link #nodeSecret}) makes them differ.
 */
final class ClusterSpec {
    static final String RESOURCE = "r0";
    static final String[] NODES = {"alpha", "beta"};

    private long sizeBytes = 256L << 20;
    private String protocol = "C";
    private String secret;
    private String namespaceNode;
    private final Map<String, String> options = new LinkedHashMap<>();
    private final Map<String, Long> nodeSizes = new HashMap<>();
    private final Map<String, String> nodeSecrets = new HashMap<>();
    private final Map<String, Map<String, String>> env = new HashMap<>();

    static ClusterSpec twoNodes() {
        return new ClusterSpec();
    }

    ClusterSpec sizeBytes(long bytes) {
        this.sizeBytes = bytes;
        return this;
    }

    ClusterSpec protocol(String p) {
        this.protocol = p;
        return this;
    }

    ClusterSpec sharedSecret(String s) {
        this.secret = s;
        return this;
    }

    /** An extra {@code [[resource]]} key; {@code tomlValue} is written as is (quote strings). */
    ClusterSpec option(String key, String tomlValue) {
        options.put(key, tomlValue);
        return this;
    }

    /** Runs {@code node} in its own network namespace, so that its replication link can be cut. */
    ClusterSpec inNamespace(String node) {
        this.namespaceNode = node;
        return this;
    }

    /** The resource size in {@code node}'s copy of the configuration. */
    ClusterSpec nodeSize(String node, long bytes) {
        nodeSizes.put(node, bytes);
        return this;
    }

    /** The shared secret in {@code node}'s copy of the configuration. */
    ClusterSpec nodeSecret(String node, String s) {
        nodeSecrets.put(node, s);
        return this;
    }

    /** An environment variable for {@code node}'s repld, e.g. REPLSTOR_FAULTS. */
    ClusterSpec env(String node, String name, String value) {
        env.computeIfAbsent(node, n -> new LinkedHashMap<>()).put(name, value);
        return this;
    }

    long sizeBytes() {
        return sizeBytes;
    }

    long sizeBytes(String node) {
        return nodeSizes.getOrDefault(node, sizeBytes);
    }

    String protocol() {
        return protocol;
    }

    String secretFor(String node) {
        return nodeSecrets.getOrDefault(node, secret);
    }

    Map<String, String> options() {
        return options;
    }

    String namespaceNode() {
        return namespaceNode;
    }

    Map<String, String> env(String node) {
        return env.getOrDefault(node, Map.of());
    }
}
