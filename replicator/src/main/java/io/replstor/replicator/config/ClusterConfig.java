package io.replstor.replicator.config;

import io.replstor.replicator.sync.AfterSbPolicy;
import org.tomlj.Toml;
import org.tomlj.TomlArray;
import org.tomlj.TomlParseError;
import org.tomlj.TomlParseResult;
import org.tomlj.TomlTable;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Function;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * The cluster configuration file: one TOML file, identical on every node (like a DRBD resource
 * file), naming the nodes and the replicated resources. {@code repld --config FILE --node NAME}
 * picks its own entries by name.
 *
 * <pre>
 * [cluster]
 * name = "prod"                     # required; letters, digits, '.', '_', '-'
 * quorum = "majority"               # "majority": roles are decided by the cluster store, a Raft
 *                                   # group of every node (data nodes and witnesses); "off": each
 *                                   # node decides from its own view of its peers, as DRBD without
 *                                   # quorum (split brain is then possible and only detected)
 *                                   #                                                  default "majority"
 * shared-secret = "..."             # authenticates the cluster store's members, 1..64 characters
 *                                   #                                                  default none
 * lease-timeout = 30                # tenths of a second, 10..600: a node that has not renewed its
 *                                   # liveness lease for this long may be deposed        default 30 (3 s)
 *
 * [[node]]                          # one per node, at least one
 * name = "alpha"                    # required, unique; what --node and [resource.on.NAME] use
 * id = 0                            # required, unique, 0..31; never reuse an id for another machine
 * role = "data"                     # "data" (holds disks) | "witness" (votes, no disks) default "data"
 * address = "10.0.0.1:7789"         # data nodes, required, unique: replication listener, shared by all
 *                                   # resources (a witness has none)
 * nbd = "10.0.0.1:10809"            # data nodes, required, unique: NBD listener for the resources' exports
 * admin = "/run/replstor/alpha.sock" # required, unique, absolute, at most 107 bytes: admin API socket
 * raft = "10.0.0.1:7788"            # unique: the cluster-store member's listener; required when the
 *                                   # cluster has a store with more than one member
 * raft-dir = "/var/lib/replstor/raft" # absolute: the store's Raft log and snapshots
 *                                   #                                       default "/var/lib/replstor/raft"
 *
 * [[resource]]                      # zero or more
 * name = "r0"                       # required, unique, at most 62 characters; also the NBD export name
 * size = "10GiB"                    # required: bytes, or a binary unit (K, M, G, T); multiple of 4KiB
 * protocol = "C"                    # "A" | "B" | "C"                                  default "C"
 * shared-secret = "..."             # peer authentication, 1..64 characters           default none
 * auto-promote = true               # first NBD client promotes, last one demotes     default true
 * on-no-quorum = "suspend-io"       # "suspend-io" | "io-error": a Primary's I/O while it cannot
 *                                   # reach a majority of the store                   default "suspend-io"
 * connect-int = 10                  # seconds, 1..120                                 default 10
 * ping-int = 10                     # seconds, 1..120                                 default 10
 * ping-timeout = 5                  # tenths of a second, 1..300                      default 5
 * timeout = 60                      # tenths of a second, 1..600, and less than
 *                                   # connect-int × 10 and ping-int × 10              default 60
 * ko-count = 7                      # 0..200 (0: never drop a slow peer)              default 7
 * resync-rate = "250K"              # bytes/s with a unit, 1K..4G                     default "250K"
 * c-max-rate = "100M"               # bytes/s with a unit, 250K..4G                   default "100M"
 * al-extents = 1237                 # 67..65534                                       default 1237
 * after-sb-0pri = "disconnect"      # disconnect | discard-younger-primary | discard-older-primary |
 *                                   # discard-zero-changes | discard-least-changes | discard-node-NAME
 * after-sb-1pri = "disconnect"      # disconnect | consensus | discard-secondary
 * after-sb-2pri = "disconnect"      # disconnect
 * max-peers = 1                     # bitmap slots, data nodes-1..31             default data nodes-1
 *
 *   [resource.on.alpha]             # one per data node, required for every data node (a witness
 *                                   # holds no resource)
 *   disk = "/dev/vg0/r0"            # required, absolute: backing device or file
 *   meta-disk = "internal"          # "internal" (end of disk) or an absolute path    default "internal"
 * </pre>
 *
 * Two data nodes without a witness cannot keep a majority when either fails: such a cluster must
 * say {@code quorum = "off"} explicitly (or add a witness).
 *
 * Timers keep DRBD's names, units and defaults, so values can be copied from a drbd.conf. A node
 * name with dots must be quoted in table headers: {@code [resource.on."alpha.example.com"]}.
 *
 * <p>Every problem in the file is reported, not only the first: one line each,
 * {@code FILE:LINE: KEY: what is wrong (what is allowed)}.
 *
 * @param source    the file the configuration came from, as named in messages
 * @param name      the cluster name
 * @param nodes     in file order
 * @param resources in file order
 * @param quorum    whether roles are decided by the cluster store
 * @param sharedSecret authenticates the cluster store's members (never printed)
 * @param leaseTimeout how long a node's liveness lease lasts without renewal
 */
public record ClusterConfig(String source, String name, List<NodeConfig> nodes, List<ResourceConfig> resources,
                            Quorum quorum, Optional<String> sharedSecret, Duration leaseTimeout) {

    public static final int LEASE_TIMEOUT_DEFAULT = 30;
    public static final int LEASE_TIMEOUT_MIN = 10;
    public static final int LEASE_TIMEOUT_MAX = 600;

    /** {@code [cluster] quorum}. */
    public enum Quorum {
        /** The cluster store (a Raft group of every node) decides roles and the in-sync sets. */
        MAJORITY("majority"),
        /** No store: each node decides from its own view, as DRBD with {@code quorum off}. */
        OFF("off");

        private final String configName;

        Quorum(String configName) {
            this.configName = configName;
        }

        public String configName() {
            return configName;
        }
    }

    /** Names of the cluster, nodes and resources: also used in file names, socket names and NBD export names. */
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]*");
    private static final String NAME_RULE = "letters, digits, '.', '_' and '-', starting with a letter or digit";
    private static final int UNIX_SOCKET_PATH_MAX_BYTES = 107;
    private static final Set<String> TOP_KEYS = Set.of("cluster", "node", "resource");
    private static final Set<String> CLUSTER_KEYS = Set.of("name", "quorum", "shared-secret", "lease-timeout");
    private static final Set<String> NODE_KEYS = Set.of("name", "id", "role", "address", "nbd", "admin", "raft",
            "raft-dir");
    private static final Set<String> RESOURCE_KEYS = Set.of("name", "size", "protocol", "shared-secret", "on-no-quorum",
            "auto-promote", "connect-int", "ping-int", "ping-timeout", "timeout", "ko-count", "resync-rate",
            "c-max-rate", "al-extents", "after-sb-0pri", "after-sb-1pri", "after-sb-2pri", "max-peers", "on");
    private static final Set<String> ON_KEYS = Set.of("disk", "meta-disk");

    public ClusterConfig {
        nodes = List.copyOf(nodes);
        resources = List.copyOf(resources);
        java.util.Objects.requireNonNull(quorum, "quorum");
        java.util.Objects.requireNonNull(sharedSecret, "sharedSecret");
        java.util.Objects.requireNonNull(leaseTimeout, "leaseTimeout");
    }

    /** Whether roles and in-sync sets are decided by the cluster store ({@code quorum = "majority"}). */
    public boolean hasStore() {
        return quorum == Quorum.MAJORITY;
    }

    /** The nodes that hold disks, in file order. */
    public List<NodeConfig> dataNodes() {
        return nodes.stream().filter(n -> !n.isWitness()).toList();
    }

    /** The witnesses, in file order. */
    public List<NodeConfig> witnesses() {
        return nodes.stream().filter(NodeConfig::isWitness).toList();
    }

    /** Reads and validates {@code file}. */
    public static ClusterConfig load(Path file) throws ClusterConfigException {
        String text;
        try {
            text = Files.readString(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new ClusterConfigException(file + ": cannot read the cluster configuration: " + e);
        }
        return parse(text, file.toString());
    }

    /** Parses and validates {@code text}; {@code source} names it in messages. */
    public static ClusterConfig parse(String text, String source) throws ClusterConfigException {
        TomlParseResult toml = Toml.parse(text);
        if (toml.hasErrors()) {
            List<String> problems = new ArrayList<>();
            for (TomlParseError e : toml.errors()) {
                problems.add(source + ":" + e.position().line() + ":" + e.position().column() + ": TOML syntax: "
                        + e.getMessage());
            }
            throw new ClusterConfigException(problems);
        }
        return new Parser(new TomlReader(source), source).parse(toml);
    }

    public Optional<NodeConfig> node(String nodeName) {
        return nodes.stream().filter(n -> n.name().equals(nodeName)).findFirst();
    }

    /** The node {@code repld --node NAME} runs as. */
    public NodeConfig requireNode(String nodeName) throws ClusterConfigException {
        Optional<NodeConfig> n = node(nodeName);
        if (n.isEmpty()) {
            throw new ClusterConfigException(source + ": node '" + nodeName + "' is not defined (nodes: "
                    + nodeNames() + ")");
        }
        return n.get();
    }

    public Optional<ResourceConfig> resource(String resourceName) {
        return resources.stream().filter(r -> r.name().equals(resourceName)).findFirst();
    }

    /** All data nodes but {@code nodeName}, in file order. */
    public List<NodeConfig> peersOf(String nodeName) {
        return dataNodes().stream().filter(n -> !n.name().equals(nodeName)).toList();
    }

    /** Everything but the secret, which must not reach logs. */
    @Override
    public String toString() {
        return "ClusterConfig[source=" + source + ", name=" + name + ", nodes=" + nodes + ", resources=" + resources
                + ", quorum=" + quorum.configName() + ", sharedSecret=" + (sharedSecret.isPresent() ? "(set)"
                : "(none)") + ", leaseTimeout=" + leaseTimeout.toMillis() + " ms]";
    }

    private String nodeNames() {
        return nodes.stream().map(NodeConfig::name).collect(Collectors.joining(", "));
    }

    /** One pass over one document; holds what cross-checks need. */
    private static final class Parser {
        private final TomlReader r;
        private final String source;
        private final List<NodeConfig> nodes = new ArrayList<>();
        /** Every node name seen, valid or not, so that resources are not also blamed for a bad node entry. */
        private final List<String> nodeNames = new ArrayList<>();
        /** The names of the witnesses among them (they hold no resource). */
        private final List<String> witnessNames = new ArrayList<>();
        private Quorum quorum = Quorum.MAJORITY;
        private int clusterLine;
        private final Map<String, String> diskUsers = new HashMap<>();

        Parser(TomlReader r, String source) {
            this.r = r;
            this.source = source;
        }

        ClusterConfig parse(TomlTable top) throws ClusterConfigException {
            r.onlyKeys(top, "", TOP_KEYS);
            TomlTable cluster = r.table(top, "", "cluster", "[cluster]");
            String clusterName = parseCluster(top, cluster);
            String secret = cluster == null ? null : secret(cluster, "cluster.");
            Integer lease = cluster == null ? null : r.integer(cluster, "cluster.", "lease-timeout",
                    LEASE_TIMEOUT_MIN, LEASE_TIMEOUT_MAX, "tenths of a second, " + LEASE_TIMEOUT_MIN + ".."
                            + LEASE_TIMEOUT_MAX + ", default " + LEASE_TIMEOUT_DEFAULT + " (3 s)");
            parseNodes(top);
            checkQuorum(cluster);
            List<ResourceConfig> resources = parseResources(top);
            if (r.hasProblems()) {
                throw new ClusterConfigException(r.problems());
            }
            return new ClusterConfig(source, clusterName, nodes, resources, quorum, Optional.ofNullable(secret),
                    Duration.ofMillis(100L * (lease == null ? LEASE_TIMEOUT_DEFAULT : lease)));
        }

        /** The node set must suit the quorum mode: a majority must survive one failure, witnesses need a store. */
        private void checkQuorum(TomlTable cluster) {
            long data = nodes.stream().filter(n -> !n.isWitness()).count();
            long witnesses = nodes.size() - data;
            String key = "cluster.quorum";
            int line = cluster != null && r.has(cluster, "quorum") ? TomlReader.line(cluster, "quorum") : clusterLine;
            if (quorum == Quorum.MAJORITY && data == 2 && witnesses == 0 && nodes.size() == nodeNames.size()) {
                r.problem(line, key, "two data nodes without a witness cannot keep a majority when either fails:"
                        + " add a [[node]] with role = \"witness\" (it votes and holds no disk), or set quorum ="
                        + " \"off\" (each node then decides alone, as DRBD without quorum: split brain is possible"
                        + " and only detected)");
            }
            if (quorum == Quorum.OFF && witnesses > 0) {
                r.problem(line, key, "a witness only votes in the cluster store, and quorum = \"off\" runs none:"
                        + " remove the witness " + String.join(", ", witnessNames) + " or set quorum = \"majority\"");
            }
            if (data == 0 && nodes.size() == nodeNames.size() && !nodes.isEmpty()) {
                r.problem(line, "node", "every node is a witness: a cluster needs at least one data node");
            }
            if (quorum == Quorum.MAJORITY && nodes.size() > 1) {
                for (int i = 0; i < nodes.size(); i++) {
                    NodeConfig n = nodes.get(i);
                    if (n.raft() == null) {
                        r.problem(clusterLine, "node[" + i + "].raft", "missing: node '" + n.name() + "' needs the"
                                + " host:port its cluster-store member listens on (raft = \"HOST:PORT\"), as every"
                                + " member of a cluster with quorum = \"majority\" does");
                    }
                }
            }
        }

        // ---- [cluster] ----

        private String parseCluster(TomlTable top, TomlTable cluster) {
            if (cluster == null) {
                if (!r.has(top, "cluster")) {
                    r.problem(0, "cluster", "missing: the file needs a [cluster] table with name = \"...\"");
                }
                return null;
            }
            r.onlyKeys(cluster, "cluster.", CLUSTER_KEYS);
            clusterLine = TomlReader.line(top, "cluster");
            r.require(cluster, "cluster.", "name", clusterLine, "the cluster's name");
            String q = r.string(cluster, "cluster.", "quorum", "\"majority\" or \"off\"");
            if (q != null) {
                switch (q) {
                    case "majority" -> quorum = Quorum.MAJORITY;
                    case "off" -> quorum = Quorum.OFF;
                    default -> r.problem(cluster, "cluster.", "quorum", "'" + q + "' is not a quorum mode (allowed:"
                            + " \"majority\", \"off\"; default \"majority\")");
                }
            }
            return name(cluster, "cluster.", "name");
        }

        // ---- [[node]] ----

        private void parseNodes(TomlTable top) {
            TomlArray arr = r.tables(top, "node");
            if (arr == null || arr.isEmpty()) {
                if (!r.has(top, "node")) {
                    r.problem(0, "node", "missing: add one [[node]] table per node");
                }
                return;
            }
            Map<String, Integer> names = new HashMap<>();
            Map<Integer, Integer> ids = new HashMap<>();
            List<Object[]> endpoints = new ArrayList<>(); // {HostPort, key, line}
            Map<Path, Integer> admins = new HashMap<>();
            for (int i = 0; i < arr.size(); i++) {
                TomlTable t = arr.getTable(i);
                String prefix = "node[" + i + "].";
                int line = TomlReader.line(arr, i);
                r.onlyKeys(t, prefix, NODE_KEYS);
                r.require(t, prefix, "name", line, "the node's name, as --node NAME gives it");
                r.require(t, prefix, "id", line, "an integer 0.." + NodeConfig.MAX_NODE_ID + ", unique");
                NodeConfig.Role role = role(t, prefix);
                boolean witness = role == NodeConfig.Role.WITNESS;
                if (witness) {
                    for (String k : List.of("address", "nbd")) {
                        if (r.has(t, k)) {
                            r.problem(t, prefix, k, "a witness has no " + ("address".equals(k) ? "replication" : "NBD")
                                    + " listener (it holds no disk); remove the key");
                        }
                    }
                } else {
                    r.require(t, prefix, "address", line, "the replication listener, host:port");
                    r.require(t, prefix, "nbd", line, "the NBD listener, host:port");
                }
                r.require(t, prefix, "admin", line, "the admin socket, an absolute path");
                String name = name(t, prefix, "name");
                Integer id = r.integer(t, prefix, "id", 0, NodeConfig.MAX_NODE_ID,
                        "a node id is 0.." + NodeConfig.MAX_NODE_ID);
                HostPort address = witness ? null : hostPort(t, prefix, "address");
                HostPort nbd = witness ? null : hostPort(t, prefix, "nbd");
                HostPort raft = hostPort(t, prefix, "raft");
                Path raftDir = r.has(t, "raft-dir") ? absolutePath(t, prefix, "raft-dir") : NodeConfig.RAFT_DIR_DEFAULT;
                Path admin = absolutePath(t, prefix, "admin");
                if (admin != null && admin.toString().getBytes(StandardCharsets.UTF_8).length
                        > UNIX_SOCKET_PATH_MAX_BYTES) {
                    r.problem(t, prefix, "admin", "a Unix socket path is at most " + UNIX_SOCKET_PATH_MAX_BYTES
                            + " bytes; choose a shorter one");
                    admin = null;
                }
                if (name != null) {
                    nodeNames.add(name);
                    if (witness) {
                        witnessNames.add(name);
                    }
                    unique(names, name, i, t, prefix, "name", "node name '" + name + "'", j -> "node[" + j + "]");
                }
                if (id != null) {
                    unique(ids, id, i, t, prefix, "id", "node id " + id, j -> "node[" + j + "]");
                }
                uniqueEndpoint(endpoints, address, prefix + "address", TomlReader.line(t, "address"));
                uniqueEndpoint(endpoints, nbd, prefix + "nbd", TomlReader.line(t, "nbd"));
                uniqueEndpoint(endpoints, raft, prefix + "raft", TomlReader.line(t, "raft"));
                if (admin != null) {
                    unique(admins, admin, i, t, prefix, "admin", "admin socket " + admin, j -> "node[" + j + "]");
                }
                boolean listenersOk = witness || (address != null && nbd != null);
                boolean raftOk = raft != null || !r.has(t, "raft");
                if (name != null && id != null && role != null && listenersOk && admin != null && raftOk
                        && raftDir != null) {
                    nodes.add(new NodeConfig(name, id, role, address, nbd, admin, raft, raftDir));
                }
            }
        }

        private NodeConfig.Role role(TomlTable t, String prefix) {
            String s = r.string(t, prefix, "role", "\"data\" or \"witness\"");
            if (s == null) {
                return r.has(t, "role") ? null : NodeConfig.Role.DATA;
            }
            for (NodeConfig.Role role : NodeConfig.Role.values()) {
                if (role.configName().equals(s)) {
                    return role;
                }
            }
            r.problem(t, prefix, "role", "'" + s + "' is not a node role (allowed: \"data\", \"witness\"; default"
                    + " \"data\")");
            return null;
        }

        private <K> void unique(Map<K, Integer> seen, K key, int index, TomlTable t, String prefix, String field,
                                String what, Function<Integer, String> owner) {
            Integer first = seen.putIfAbsent(key, index);
            if (first != null) {
                r.problem(t, prefix, field, what + " is already used by " + owner.apply(first) + "; each must be unique");
            }
        }

        private void uniqueEndpoint(List<Object[]> seen, HostPort hp, String key, int line) {
            if (hp == null) {
                return;
            }
            for (Object[] s : seen) {
                if (((HostPort) s[0]).sameEndpoint(hp)) {
                    r.problem(line, key, hp + " is already used by " + s[1] + " (line " + s[2]
                            + "); every listener needs its own host:port");
                    return;
                }
            }
            seen.add(new Object[] {hp, key, line});
        }

        // ---- [[resource]] ----

        private List<ResourceConfig> parseResources(TomlTable top) {
            List<ResourceConfig> out = new ArrayList<>();
            TomlArray arr = r.tables(top, "resource");
            if (arr == null) {
                return out;
            }
            Map<String, Integer> names = new HashMap<>();
            for (int i = 0; i < arr.size(); i++) {
                TomlTable t = arr.getTable(i);
                String prefix = "resource[" + i + "].";
                int before = r.problemCount();
                ResourceConfig res = parseResource(t, prefix, TomlReader.line(arr, i));
                if (res != null) {
                    unique(names, res.name(), i, t, prefix, "name", "resource name '" + res.name() + "'",
                            j -> "resource[" + j + "]");
                }
                if (res != null && r.problemCount() == before) {
                    out.add(res);
                }
            }
            return out;
        }

        /** Null if any value was invalid (the problems are recorded). */
        private ResourceConfig parseResource(TomlTable t, String prefix, int line) {
            int before = r.problemCount();
            r.onlyKeys(t, prefix, RESOURCE_KEYS);
            r.require(t, prefix, "name", line, "the resource's name, e.g. \"r0\"");
            r.require(t, prefix, "size", line, "the volume size, e.g. \"10GiB\"");
            String name = name(t, prefix, "name");
            if (name != null && name.length() > ResourceConfig.NAME_MAX_LENGTH) {
                r.problem(t, prefix, "name", "'" + name + "' is longer than " + ResourceConfig.NAME_MAX_LENGTH
                        + " characters (the metadata stores the name)");
            }
            Long size = size(t, prefix);
            ReplicationProtocol protocol = protocol(t, prefix);
            String secret = secret(t, prefix);
            ResourceConfig.OnNoQuorum onNoQuorum = onNoQuorum(t, prefix);
            Boolean autoPromote = r.bool(t, prefix, "auto-promote");
            NetTimers timers = timers(t, prefix);
            Long resyncRate = r.rate(t, prefix, "resync-rate", ResourceConfig.RESYNC_RATE_MIN, ResourceConfig.RATE_MAX,
                    "resync-rate is 1K..4G, default \"250K\"");
            Long cMaxRate = r.rate(t, prefix, "c-max-rate", ResourceConfig.C_MAX_RATE_MIN, ResourceConfig.RATE_MAX,
                    "c-max-rate is 250K..4G, default \"100M\"");
            Integer alExtents = r.integer(t, prefix, "al-extents", ResourceConfig.AL_EXTENTS_MIN,
                    ResourceConfig.AL_EXTENTS_MAX, "al-extents is " + ResourceConfig.AL_EXTENTS_MIN + ".."
                            + ResourceConfig.AL_EXTENTS_MAX + ", default " + ResourceConfig.AL_EXTENTS_DEFAULT);
            AfterSbPolicy afterSb = afterSb(t, prefix);
            int maxPeers = maxPeers(t, prefix);
            Map<String, DiskConfig> on = on(t, prefix, line, name);
            if (r.problemCount() != before) {
                return null;
            }
            return new ResourceConfig(name, size, protocol == null ? ResourceConfig.PROTOCOL_DEFAULT : protocol,
                    Optional.ofNullable(secret),
                    autoPromote == null ? ResourceConfig.AUTO_PROMOTE_DEFAULT : autoPromote, timers,
                    resyncRate == null ? ResourceConfig.RESYNC_RATE_DEFAULT : resyncRate,
                    cMaxRate == null ? ResourceConfig.C_MAX_RATE_DEFAULT : cMaxRate,
                    alExtents == null ? ResourceConfig.AL_EXTENTS_DEFAULT : alExtents, afterSb, maxPeers, on,
                    onNoQuorum == null ? ResourceConfig.ON_NO_QUORUM_DEFAULT : onNoQuorum);
        }

        private ResourceConfig.OnNoQuorum onNoQuorum(TomlTable t, String prefix) {
            String s = r.string(t, prefix, "on-no-quorum", "\"suspend-io\" or \"io-error\"");
            if (s == null) {
                return null;
            }
            for (ResourceConfig.OnNoQuorum v : ResourceConfig.OnNoQuorum.values()) {
                if (v.configName().equals(s)) {
                    return v;
                }
            }
            r.problem(t, prefix, "on-no-quorum", "'" + s + "' is not allowed (allowed: \"suspend-io\", \"io-error\";"
                    + " default \"suspend-io\")");
            return null;
        }

        private Long size(TomlTable t, String prefix) {
            String rule = "a positive multiple of 4KiB, e.g. \"10GiB\"";
            Long size = r.size(t, prefix, "size", rule);
            if (size != null && (size <= 0 || size % ResourceConfig.SIZE_GRANULARITY_BYTES != 0)) {
                r.problem(t, prefix, "size", size + " bytes is not " + rule);
                return null;
            }
            return size;
        }

        private ReplicationProtocol protocol(TomlTable t, String prefix) {
            String p = r.string(t, prefix, "protocol", "\"A\", \"B\" or \"C\"");
            if (p == null) {
                return null;
            }
            for (ReplicationProtocol rp : ReplicationProtocol.values()) {
                if (rp.name().equals(p)) {
                    return rp;
                }
            }
            r.problem(t, prefix, "protocol", "'" + p + "' is not a replication protocol (allowed: \"A\", \"B\","
                    + " \"C\"; default \"C\")");
            return null;
        }

        private String secret(TomlTable t, String prefix) {
            String s = r.string(t, prefix, "shared-secret", "1 to " + ResourceConfig.SHARED_SECRET_MAX_LENGTH
                    + " characters");
            if (s != null && (s.isEmpty() || s.length() > ResourceConfig.SHARED_SECRET_MAX_LENGTH)) {
                // never echo the secret itself
                r.problem(t, prefix, "shared-secret", "has " + s.length() + " characters; allowed: 1 to "
                        + ResourceConfig.SHARED_SECRET_MAX_LENGTH + " (or leave it out for no authentication)");
                return null;
            }
            return s;
        }

        private NetTimers timers(TomlTable t, String prefix) {
            int before = r.problemCount();
            Integer connectInt = r.integer(t, prefix, "connect-int", NetTimers.CONNECT_INT_MIN,
                    NetTimers.CONNECT_INT_MAX, "seconds, " + NetTimers.CONNECT_INT_MIN + ".."
                            + NetTimers.CONNECT_INT_MAX + ", default " + NetTimers.CONNECT_INT_DEFAULT);
            Integer pingInt = r.integer(t, prefix, "ping-int", NetTimers.PING_INT_MIN, NetTimers.PING_INT_MAX,
                    "seconds, " + NetTimers.PING_INT_MIN + ".." + NetTimers.PING_INT_MAX + ", default "
                            + NetTimers.PING_INT_DEFAULT);
            Integer pingTimeout = r.integer(t, prefix, "ping-timeout", NetTimers.PING_TIMEOUT_MIN,
                    NetTimers.PING_TIMEOUT_MAX, "tenths of a second, " + NetTimers.PING_TIMEOUT_MIN + ".."
                            + NetTimers.PING_TIMEOUT_MAX + ", default " + NetTimers.PING_TIMEOUT_DEFAULT + " (0.5 s)");
            Integer timeout = r.integer(t, prefix, "timeout", NetTimers.TIMEOUT_MIN, NetTimers.TIMEOUT_MAX,
                    "tenths of a second, " + NetTimers.TIMEOUT_MIN + ".." + NetTimers.TIMEOUT_MAX + ", default "
                            + NetTimers.TIMEOUT_DEFAULT + " (6 s)");
            Integer koCount = r.integer(t, prefix, "ko-count", NetTimers.KO_COUNT_MIN, NetTimers.KO_COUNT_MAX,
                    NetTimers.KO_COUNT_MIN + ".." + NetTimers.KO_COUNT_MAX + " (0: never drop a slow peer), default "
                            + NetTimers.KO_COUNT_DEFAULT);
            if (r.problemCount() != before) {
                return null;
            }
            int ci = connectInt == null ? NetTimers.CONNECT_INT_DEFAULT : connectInt;
            int pi = pingInt == null ? NetTimers.PING_INT_DEFAULT : pingInt;
            int to = timeout == null ? NetTimers.TIMEOUT_DEFAULT : timeout;
            if (to >= ci * 10 || to >= pi * 10) {
                String key = timeout != null ? "timeout" : (to >= ci * 10 && connectInt != null ? "connect-int"
                        : "ping-int");
                r.problem(t, prefix, key, "timeout " + to + " (" + to / 10.0 + " s) must be shorter than connect-int "
                        + ci + " s and ping-int " + pi + " s: a peer must be declared dead before the next"
                        + " connection attempt or ping is due");
                return null;
            }
            return new NetTimers(ci, pi, pingTimeout == null ? NetTimers.PING_TIMEOUT_DEFAULT : pingTimeout, to,
                    koCount == null ? NetTimers.KO_COUNT_DEFAULT : koCount);
        }

        private AfterSbPolicy afterSb(TomlTable t, String prefix) {
            AfterSbPolicy.ZeroPri zero = AfterSbPolicy.ZeroPri.DISCONNECT;
            AfterSbPolicy.OnePri one = AfterSbPolicy.OnePri.DISCONNECT;
            AfterSbPolicy.TwoPri two = AfterSbPolicy.TwoPri.DISCONNECT;
            String s0 = r.string(t, prefix, "after-sb-0pri", AfterSbPolicy.ZeroPri.allowed());
            if (s0 != null) {
                try {
                    zero = AfterSbPolicy.ZeroPri.parse(s0);
                    if (zero.discardNode() != null && !nodeNames.contains(zero.discardNode())) {
                        r.problem(t, prefix, "after-sb-0pri", "'" + s0 + "' names no node of this cluster (nodes: "
                                + String.join(", ", nodeNames) + ")");
                    }
                } catch (IllegalArgumentException e) {
                    r.problem(t, prefix, "after-sb-0pri", e.getMessage());
                }
            }
            String s1 = r.string(t, prefix, "after-sb-1pri", AfterSbPolicy.OnePri.allowed());
            if (s1 != null) {
                try {
                    one = AfterSbPolicy.OnePri.parse(s1);
                } catch (IllegalArgumentException e) {
                    r.problem(t, prefix, "after-sb-1pri", e.getMessage());
                }
            }
            String s2 = r.string(t, prefix, "after-sb-2pri", AfterSbPolicy.TwoPri.allowed());
            if (s2 != null) {
                try {
                    two = AfterSbPolicy.TwoPri.parse(s2);
                } catch (IllegalArgumentException e) {
                    r.problem(t, prefix, "after-sb-2pri", e.getMessage());
                }
            }
            return new AfterSbPolicy(zero, one, two);
        }

        private int maxPeers(TomlTable t, String prefix) {
            int needed = Math.max(1, nodeNames.size() - witnessNames.size() - 1);
            Integer maxPeers = r.integer(t, prefix, "max-peers", 1, ResourceConfig.MAX_PEERS_MAX,
                    "bitmap slots, " + needed + ".." + ResourceConfig.MAX_PEERS_MAX + ", default nodes-1 = " + needed);
            if (maxPeers == null) {
                return needed;
            }
            if (maxPeers < needed) {
                r.problem(t, prefix, "max-peers", maxPeers + " bitmap slots cannot track the " + needed
                        + " other nodes of this cluster; allowed: " + needed + ".." + ResourceConfig.MAX_PEERS_MAX);
            }
            return maxPeers;
        }

        // ---- [resource.on.NODE] ----

        private Map<String, DiskConfig> on(TomlTable t, String prefix, int resourceLine, String resourceName) {
            Map<String, DiskConfig> out = new LinkedHashMap<>();
            TomlTable on = r.table(t, prefix, "on", "[resource.on.NODE] with disk = \"...\"");
            if (on == null) {
                if (!r.has(t, "on")) {
                    r.problem(resourceLine, prefix + "on", "missing: add [resource.on.NODE] with disk = \"...\" for each"
                            + " node (" + String.join(", ", nodeNames) + ")");
                }
                return out;
            }
            String onPrefix = prefix + "on.";
            Map<String, DiskConfig> byNode = new HashMap<>();
            for (String node : on.keySet()) {
                if (!nodeNames.contains(node)) {
                    r.problem(on, onPrefix, node, "unknown node '" + node + "' (nodes: " + String.join(", ", nodeNames)
                            + ")" + quotingHint(node));
                    continue;
                }
                if (witnessNames.contains(node)) {
                    r.problem(on, onPrefix, node, "'" + node + "' is a witness: it votes in the cluster store and holds"
                            + " no disk; remove [resource.on." + TomlReader.keyPart(node) + "] (or make the node"
                            + " role = \"data\")");
                    continue;
                }
                TomlTable d = r.table(on, onPrefix, node, "[resource.on." + TomlReader.keyPart(node) + "]");
                if (d != null) {
                    DiskConfig disk = disk(d, onPrefix + TomlReader.keyPart(node) + ".", TomlReader.line(on, node),
                            node, resourceName);
                    if (disk != null) {
                        byNode.put(node, disk);
                    }
                }
            }
            for (String node : nodeNames) {
                if (witnessNames.contains(node)) {
                    continue;
                }
                if (byNode.containsKey(node)) {
                    out.put(node, byNode.get(node));
                } else if (!on.keySet().contains(node)) {
                    r.problem(TomlReader.line(t, "on"), prefix + "on", "no entry for node '" + node + "': add [resource.on."
                            + TomlReader.keyPart(node) + "] with disk = \"...\" (every data node holds every resource)");
                }
            }
            return out;
        }

        /** Tells the user to quote a dotted node name that TOML split into nested tables. */
        private String quotingHint(String key) {
            return nodeNames.stream().filter(n -> n.startsWith(key + ".")).findFirst()
                    .map(n -> "; a name with dots must be quoted: [resource.on.\"" + n + "\"]").orElse("");
        }

        private DiskConfig disk(TomlTable d, String prefix, int line, String node, String resourceName) {
            r.onlyKeys(d, prefix, ON_KEYS);
            r.require(d, prefix, "disk", line, "the backing device or file, an absolute path");
            Path disk = absolutePath(d, prefix, "disk");
            Optional<Path> meta = Optional.empty();
            String m = r.string(d, prefix, "meta-disk", "\"internal\" or an absolute path");
            boolean metaOk = true;
            if (m != null && !m.equals("internal")) {
                Path p = absolutePath(d, prefix, "meta-disk");
                metaOk = p != null;
                meta = Optional.ofNullable(p);
            }
            if (disk == null || !metaOk || (m == null && r.has(d, "meta-disk"))) {
                return null;
            }
            String owner = "resource " + (resourceName == null ? "?" : "'" + resourceName + "'");
            claimDevice(node, disk, owner + " disk", d, prefix, "disk");
            meta.ifPresent(p -> claimDevice(node, p, owner + " meta-disk", d, prefix, "meta-disk"));
            return new DiskConfig(node, disk, meta);
        }

        /** One device per use on each node: two resources on one disk would overwrite each other. */
        private void claimDevice(String node, Path device, String use, TomlTable t, String prefix, String key) {
            String id = node + "\u0000" + device.normalize();
            String previous = diskUsers.putIfAbsent(id, use);
            if (previous != null) {
                r.problem(t, prefix, key, device + " on node '" + node + "' is already the " + previous
                        + "; each disk and meta-disk serves one use");
            }
        }

        // ---- value helpers ----

        private String name(TomlTable t, String prefix, String key) {
            String s = r.string(t, prefix, key, NAME_RULE);
            if (s != null && !NAME.matcher(s).matches()) {
                r.problem(t, prefix, key, "'" + s + "' is not a valid name (" + NAME_RULE + ")");
                return null;
            }
            return s;
        }

        private HostPort hostPort(TomlTable t, String prefix, String key) {
            String s = r.string(t, prefix, key, "host:port");
            if (s == null) {
                return null;
            }
            try {
                return HostPort.parse(s);
            } catch (IllegalArgumentException e) {
                r.problem(t, prefix, key, e.getMessage());
                return null;
            }
        }

        private Path absolutePath(TomlTable t, String prefix, String key) {
            String s = r.string(t, prefix, key, "an absolute path");
            if (s == null) {
                return null;
            }
            try {
                Path p = Path.of(s);
                if (p.isAbsolute()) {
                    return p;
                }
            } catch (InvalidPathException e) {
                r.problem(t, prefix, key, "'" + s + "' is not a valid path: " + e.getReason());
                return null;
            }
            r.problem(t, prefix, key, "'" + s + "' is not an absolute path (write it from /, e.g. \"/var/lib/replstor/"
                    + "r0.img\")");
            return null;
        }
    }
}
