package io.replstor.systemtest.repl;

import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What a test cluster looks like: two or three data nodes, alpha (id 0), beta (id 1) and gamma (id 2), optionally a
 * witness named {@value #WITNESS} (the next id, no disk), one resource {@code r0}. {@link #twoNodes()} is the
 * cluster without a store ({@code quorum = "off"}); {@link #withWitness(int)} the one whose roles the cluster store
 * decides ({@code quorum = "majority"}: every node, the witness too, runs a store member on its {@code raft}
 * address, with its {@code raft-dir} in the test's directory and a random {@code [cluster] shared-secret}). Timers are
 * fast (connect-int 1 s, ping-int 1 s) so that losses and reconnects take a second or two; the ack and ping
 * timeouts are 0.9 s and 1 s rather than DRBD's 0.5 s ping-timeout, because a test machine with two busy cores
 * and three JVMs starting stalls a node for half a second now and then, and a spurious disconnect would turn
 * replicated writes into resync traffic that several tests count exactly. Each node
 * gets its own copy of the configuration file; they are identical unless a per-node override
 * ({@link #nodeSize}, {@link #nodeSecret}) makes them differ.
 */
final class ClusterSpec {
    static final String RESOURCE = "r0";
    static final List<String> DATA_NODE_NAMES = List.of("alpha", "beta", "gamma");
    static final String WITNESS = "witness";
    /** The store tests' timings scaled for processes on a busy machine: 2 s leases (renewed every 0.5 s). */
    static final int DEFAULT_LEASE_TIMEOUT_TENTHS = 20;

    private final int dataNodes;
    private final boolean witness;
    private final boolean store;
    private final String clusterSecret;
    private int leaseTimeoutTenths = DEFAULT_LEASE_TIMEOUT_TENTHS;
    private long sizeBytes = 256L << 20;
    private String protocol = "C";
    private String secret;
    private String namespaceNode;
    private final Map<String, String> options = new LinkedHashMap<>();
    private final Map<String, Long> nodeSizes = new HashMap<>();
    private final Map<String, String> nodeSecrets = new HashMap<>();
    private final Map<String, Map<String, String>> env = new HashMap<>();

    private ClusterSpec(int dataNodes, boolean witness, boolean store) {
        if (dataNodes < 2 || dataNodes > DATA_NODE_NAMES.size()) {
            throw new IllegalArgumentException("2 or 3 data nodes, not " + dataNodes);
        }
        this.dataNodes = dataNodes;
        this.witness = witness;
        this.store = store;
        byte[] secret = new byte[18];
        new SecureRandom().nextBytes(secret);
        this.clusterSecret = store ? Base64.getUrlEncoder().withoutPadding().encodeToString(secret) : null;
    }

    /** alpha and beta, {@code quorum = "off"}: each node decides its role alone (DRBD without quorum). */
    static ClusterSpec twoNodes() {
        return new ClusterSpec(2, false, false);
    }

    /** {@code dataNodes} (2 or 3) data nodes and a witness; the cluster store decides roles. */
    static ClusterSpec withWitness(int dataNodes) {
        return new ClusterSpec(dataNodes, true, true);
    }

    /** {@code [cluster] lease-timeout} in tenths of a second (store clusters only). */
    ClusterSpec leaseTimeoutTenths(int tenths) {
        this.leaseTimeoutTenths = tenths;
        return this;
    }

    /** {@code on-no-quorum} of r0: "suspend-io" (the default) or "io-error". */
    ClusterSpec onNoQuorum(String policy) {
        return option("on-no-quorum", "\"" + policy + "\"");
    }

    ClusterSpec sizeBytes(long bytes) {
        this.sizeBytes = bytes;
        return this;
    }

    ClusterSpec protocol(String p) {
        this.protocol = p;
        return this;
    }

    /** The resource's {@code shared-secret} (peer authentication); the store's is {@link #clusterSecret()}. */
    ClusterSpec sharedSecret(String s) {
        this.secret = s;
        return this;
    }

    /** An extra {@code [[resource]]} key; {@code tomlValue} is written as is (quote strings). */
    ClusterSpec option(String key, String tomlValue) {
        options.put(key, tomlValue);
        return this;
    }

    /**
     * Runs {@code node} in its own network namespace: its replication, NBD and (with a store) raft listeners bind the
     * namespace's address, so that cutting the link cuts all of them. The other nodes bind the host end's address.
     */
    ClusterSpec inNamespace(String node) {
        this.namespaceNode = node;
        return this;
    }

    /** The resource size in {@code node}'s copy of the configuration. */
    ClusterSpec nodeSize(String node, long bytes) {
        nodeSizes.put(node, bytes);
        return this;
    }

    /** The resource's (peer authentication) shared secret in {@code node}'s copy of the configuration. */
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

    /** The data nodes' names, alpha first. */
    List<String> dataNodeNames() {
        return DATA_NODE_NAMES.subList(0, dataNodes);
    }

    /** Every node of the file: the data nodes, then the witness if there is one. */
    List<String> nodeNames() {
        List<String> all = new ArrayList<>(dataNodeNames());
        if (witness) {
            all.add(WITNESS);
        }
        return all;
    }

    boolean hasWitness() {
        return witness;
    }

    /** Whether the cluster store decides roles ({@code quorum = "majority"}). */
    boolean hasStore() {
        return store;
    }

    /** {@code [cluster] shared-secret}: authenticates the store's members; null without a store. */
    String clusterSecret() {
        return clusterSecret;
    }

    int leaseTimeoutTenths() {
        return leaseTimeoutTenths;
    }

    Duration leaseTimeout() {
        return Duration.ofMillis(100L * leaseTimeoutTenths);
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
