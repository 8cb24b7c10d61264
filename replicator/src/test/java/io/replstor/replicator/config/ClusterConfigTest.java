package io.replstor.replicator.config;

import io.replstor.replicator.sync.AfterSbPolicy;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

@Timeout(10)
class ClusterConfigTest {
    private static final String FILE = "cluster.toml";

    private static final String CLUSTER = """
            [cluster]
            name = "test"
            quorum = "off"
            """;

    private static final String NODES = """
            [[node]]
            name = "alpha"
            id = 0
            address = "127.0.0.1:7789"
            nbd = "127.0.0.1:10809"
            admin = "/run/replstor/alpha.sock"

            [[node]]
            name = "beta"
            id = 1
            address = "127.0.0.1:7790"
            nbd = "127.0.0.1:10810"
            admin = "/run/replstor/beta.sock"
            """;

    /** A resource r0 on alpha and beta, with {@code options} among its keys. */
    private static String resource(String options) {
        return """
                [[resource]]
                name = "r0"
                size = "1GiB"
                %s
                  [resource.on.alpha]
                  disk = "/var/lib/replstor/alpha-r0.img"
                  [resource.on.beta]
                  disk = "/var/lib/replstor/beta-r0.img"
                """.formatted(options);
    }

    private static String valid(String resourceOptions) {
        return CLUSTER + "\n" + NODES + "\n" + resource(resourceOptions);
    }

    private static ClusterConfig parse(String text) throws ClusterConfigException {
        return ClusterConfig.parse(text, FILE);
    }

    private static ClusterConfigException problems(String text) {
        return assertThrows(ClusterConfigException.class, () -> parse(text));
    }

    /** The 1-based line of the first line of {@code text} containing {@code marker}. */
    private static int lineOf(String text, String marker) {
        String[] lines = text.split("\n", -1);
        for (int i = 0; i < lines.length; i++) {
            if (lines[i].contains(marker)) {
                return i + 1;
            }
        }
        throw new AssertionError("marker not found: " + marker);
    }

    /** Exactly one problem: at {@code line}, about {@code key}, saying {@code what}. */
    private static void assertOnlyProblem(String text, int line, String key, String what) {
        ClusterConfigException e = problems(text);
        assertEquals(1, e.problems().size(), () -> "expected one problem, got:\n" + e.getMessage());
        assertProblem(e, line, key, what);
    }

    private static void assertProblem(ClusterConfigException e, int line, String key, String what) {
        String head = FILE + (line > 0 ? ":" + line : "") + ": " + key + ": ";
        for (String p : e.problems()) {
            if (p.startsWith(head) && p.contains(what)) {
                return;
            }
        }
        fail("no problem starting with '" + head + "' and containing '" + what + "' in:\n" + e.getMessage());
    }

    // ---- valid files ----

    @Test
    void fullValidFile_parsesWithDefaultsFilledIn() throws Exception {
        ClusterConfig c = parse(valid(""));
        assertEquals("test", c.name());
        assertEquals(FILE, c.source());
        assertEquals(List.of("alpha", "beta"), c.nodes().stream().map(NodeConfig::name).toList());
        NodeConfig beta = c.requireNode("beta");
        assertEquals(1, beta.id());
        assertEquals(new HostPort("127.0.0.1", 7790), beta.address());
        assertEquals(new HostPort("127.0.0.1", 10810), beta.nbd());
        assertEquals(Path.of("/run/replstor/beta.sock"), beta.admin());

        ResourceConfig r0 = c.resource("r0").orElseThrow();
        assertEquals(1L << 30, r0.sizeBytes());
        assertEquals(ReplicationProtocol.C, r0.protocol());
        assertEquals(Optional.empty(), r0.sharedSecret());
        assertTrue(r0.autoPromote());
        assertEquals(NetTimers.DEFAULTS, r0.timers());
        assertEquals(Duration.ofSeconds(10), r0.timers().connectInterval());
        assertEquals(Duration.ofMillis(500), r0.timers().pingTimeout());
        assertEquals(Duration.ofSeconds(6), r0.timers().timeout());
        assertEquals(7, r0.timers().koCount());
        assertEquals(250L * 1024, r0.resyncRateBytesPerSecond());
        assertEquals(100L << 20, r0.cMaxRateBytesPerSecond());
        assertEquals(1237, r0.alExtents());
        assertEquals(AfterSbPolicy.DISCONNECT, r0.afterSb());
        assertEquals(1, r0.maxPeers(), "max-peers defaults to nodes - 1");
        assertEquals(List.of("alpha", "beta"), List.copyOf(r0.on().keySet()));
        DiskConfig onBeta = r0.on("beta").orElseThrow();
        assertEquals(Path.of("/var/lib/replstor/beta-r0.img"), onBeta.disk());
        assertTrue(onBeta.internalMetadata());
        assertEquals(List.of(c.node("alpha").orElseThrow()), c.peersOf("beta"));
    }

    @Test
    void everyOptionSet_isRead() throws Exception {
        String text = CLUSTER + "\n" + NODES + """

                [[resource]]
                name = "db"
                size = 1073741824
                protocol = "A"
                shared-secret = "s3cret"
                auto-promote = false
                connect-int = 20
                ping-int = 15
                ping-timeout = 10
                timeout = 90
                ko-count = 0
                resync-rate = "40M"
                c-max-rate = "1G/s"
                al-extents = 6001
                after-sb-0pri = "discard-node-beta"
                after-sb-1pri = "discard-secondary"
                after-sb-2pri = "disconnect"
                max-peers = 7

                  [resource.on.alpha]
                  disk = "/dev/vg0/db"
                  meta-disk = "/dev/vg0/db-md"
                  [resource.on.beta]
                  disk = "/dev/vg1/db"
                  meta-disk = "internal"
                """;
        ResourceConfig db = parse(text).resource("db").orElseThrow();
        assertEquals(1L << 30, db.sizeBytes());
        assertEquals(ReplicationProtocol.A, db.protocol());
        assertEquals(Optional.of("s3cret"), db.sharedSecret());
        assertFalse(db.autoPromote());
        assertEquals(new NetTimers(20, 15, 10, 90, 0), db.timers());
        assertEquals(40L << 20, db.resyncRateBytesPerSecond());
        assertEquals(1L << 30, db.cMaxRateBytesPerSecond());
        assertEquals(6001, db.alExtents());
        assertEquals("after-sb-0pri discard-node-beta, after-sb-1pri discard-secondary, after-sb-2pri disconnect",
                db.afterSb().toString());
        assertEquals(7, db.maxPeers());
        assertEquals(Optional.of(Path.of("/dev/vg0/db-md")), db.on("alpha").orElseThrow().metaDisk());
        assertTrue(db.on("beta").orElseThrow().internalMetadata());
    }

    @Test
    void dottedNodeName_quotedInTableHeader_isOneNode() throws Exception {
        String text = CLUSTER + """
                [[node]]
                name = "alpha.example.com"
                id = 3
                address = "[fd00::1]:7789"
                nbd = "alpha.example.com:10809"
                admin = "/run/replstor/a.sock"

                [[resource]]
                name = "r0"
                size = "64M"
                  [resource.on."alpha.example.com"]
                  disk = "/dev/sdb"
                """;
        ClusterConfig c = parse(text);
        assertEquals(new HostPort("fd00::1", 7789), c.nodes().get(0).address());
        assertEquals("[fd00::1]:7789", c.nodes().get(0).address().toString());
        assertEquals(1, c.resources().get(0).maxPeers(), "a one-node cluster still gets one bitmap slot");
        assertTrue(c.resources().get(0).on("alpha.example.com").isPresent());
    }

    @Test
    void load_readsAFileAndNamesItInMessages(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("replstor.toml");
        Files.writeString(file, valid(""));
        assertEquals("test", ClusterConfig.load(file).name());

        Files.writeString(file, valid("protocol = \"D\""));
        ClusterConfigException e = assertThrows(ClusterConfigException.class, () -> ClusterConfig.load(file));
        assertTrue(e.getMessage().startsWith(file + ":" + lineOf(valid("protocol = \"D\""), "protocol")
                + ": resource[0].protocol: "), e.getMessage());

        ClusterConfigException missing = assertThrows(ClusterConfigException.class,
                () -> ClusterConfig.load(dir.resolve("absent.toml")));
        assertTrue(missing.getMessage().startsWith(dir.resolve("absent.toml") + ": cannot read"), missing.getMessage());
    }

    @Test
    void resourceToString_neverShowsTheSharedSecret() throws Exception {
        ResourceConfig r0 = parse(valid("shared-secret = \"hunter2\"")).resource("r0").orElseThrow();
        assertFalse(r0.toString().contains("hunter2"), r0.toString());
        assertTrue(r0.toString().contains("sharedSecret=(set)"), r0.toString());
    }

    @Test
    void requireNode_unknownName_listsTheNodes() throws Exception {
        ClusterConfig c = parse(valid(""));
        ClusterConfigException e = assertThrows(ClusterConfigException.class, () -> c.requireNode("gamma"));
        assertEquals(FILE + ": node 'gamma' is not defined (nodes: alpha, beta)", e.getMessage());
    }

    // ---- syntax and structure ----

    @Test
    void tomlSyntaxError_namesFileLineAndColumn() {
        String text = valid("protocol = ");
        ClusterConfigException e = problems(text);
        assertTrue(e.getMessage().startsWith(FILE + ":" + lineOf(text, "protocol = ") + ":"), e.getMessage());
        assertTrue(e.getMessage().contains("TOML syntax"), e.getMessage());
    }

    @Test
    void unknownKeys_areReportedAtEveryLevelWithTheAllowedOnes() {
        String text = CLUSTER.replace("name = \"test\"", "name = \"test\"\nvotes = 2")
                + "\n" + NODES.replace("id = 1", "id = 1\nweight = 3") + "\n"
                + resource("protcol = \"C\"").replace("disk = \"/var/lib/replstor/beta-r0.img\"",
                "disk = \"/var/lib/replstor/beta-r0.img\"\n  device = \"/dev/drbd0\"") + "\n[global]\nx = 1\n";
        ClusterConfigException e = problems(text);
        assertEquals(5, e.problems().size(), e::getMessage);
        assertProblem(e, lineOf(text, "votes"), "cluster.votes",
                "unknown key (allowed: lease-timeout, name, quorum, shared-secret)");
        assertProblem(e, lineOf(text, "weight"), "node[1].weight",
                "unknown key (allowed: address, admin, id, name, nbd, raft, raft-dir, role)");
        assertProblem(e, lineOf(text, "protcol"), "resource[0].protcol", "unknown key (allowed: after-sb-0pri,");
        assertProblem(e, lineOf(text, "device"), "resource[0].on.beta.device",
                "unknown key (allowed: disk, meta-disk)");
        assertProblem(e, lineOf(text, "[global]"), "global", "unknown key (allowed: cluster, node, resource)");
    }

    @Test
    void missingClusterAndNodes_areReported() {
        ClusterConfigException e = problems("# empty\n");
        assertProblem(e, 0, "cluster", "missing: the file needs a [cluster] table");
        assertProblem(e, 0, "node", "missing: add one [[node]] table per node");
    }

    @Test
    void missingRequiredKeys_areReportedAtTheirTable() {
        String text = CLUSTER + "\n" + NODES.replace("nbd = \"127.0.0.1:10810\"\n", "") + "\n"
                + resource("").replace("size = \"1GiB\"\n", "");
        ClusterConfigException e = problems(text);
        assertEquals(2, e.problems().size(), e::getMessage);
        int betaLine = lineOf(text, "name = \"beta\"") - 1;
        assertProblem(e, betaLine, "node[1].nbd", "missing (the NBD listener, host:port)");
        assertProblem(e, lineOf(text, "[[resource]]"), "resource[0].size", "missing (the volume size");
    }

    @Test
    void severalProblems_areAllReportedInFileOrder() {
        String text = valid("protocol = \"Z\"\nko-count = 500").replace("id = 1", "id = 99");
        ClusterConfigException e = problems(text);
        assertEquals(3, e.problems().size(), e::getMessage);
        assertTrue(e.problems().get(0).contains("node[1].id"), e.getMessage());
        assertTrue(e.problems().get(1).contains("resource[0].protocol"), e.getMessage());
        assertTrue(e.problems().get(2).contains("resource[0].ko-count"), e.getMessage());
    }

    // ---- types and ranges ----

    @Test
    void wrongTypes_sayWhatIsExpected() {
        String text = valid("auto-promote = \"yes\"\nconnect-int = \"10\"").replace("id = 0", "id = \"0\"");
        ClusterConfigException e = problems(text);
        assertProblem(e, lineOf(text, "id = \"0\""), "node[0].id", "must be an integer without quotes");
        assertProblem(e, lineOf(text, "auto-promote"), "resource[0].auto-promote", "must be true or false");
        assertProblem(e, lineOf(text, "connect-int"), "resource[0].connect-int",
                "must be an integer without quotes: seconds, 1..120, default 10");
    }

    @Test
    void nodeIdOutOfRange_isReported() {
        String text = valid("").replace("id = 1", "id = 32");
        assertOnlyProblem(text, lineOf(text, "id = 32"), "node[1].id", "32 is out of range: a node id is 0..31");
    }

    @Test
    void timersOutOfRange_nameUnitAndRange() {
        String text = valid("connect-int = 0\nping-timeout = 301\ntimeout = 601\nal-extents = 66");
        ClusterConfigException e = problems(text);
        assertProblem(e, lineOf(text, "connect-int"), "resource[0].connect-int",
                "0 is out of range: seconds, 1..120, default 10");
        assertProblem(e, lineOf(text, "ping-timeout"), "resource[0].ping-timeout",
                "301 is out of range: tenths of a second, 1..300, default 5 (0.5 s)");
        assertProblem(e, lineOf(text, "timeout = 601"), "resource[0].timeout",
                "601 is out of range: tenths of a second, 1..600, default 60 (6 s)");
        assertProblem(e, lineOf(text, "al-extents"), "resource[0].al-extents", "66 is out of range: al-extents is 67..65534");
    }

    @Test
    void timeoutNotShorterThanConnectAndPingInterval_isReported() {
        String text = valid("timeout = 100");
        assertOnlyProblem(text, lineOf(text, "timeout"), "resource[0].timeout",
                "timeout 100 (10.0 s) must be shorter than connect-int 10 s and ping-int 10 s");
        String shortConnect = valid("connect-int = 5");
        assertOnlyProblem(shortConnect, lineOf(shortConnect, "connect-int"), "resource[0].connect-int",
                "timeout 60 (6.0 s) must be shorter than connect-int 5 s");
        String shortPing = valid("ping-int = 6");
        assertOnlyProblem(shortPing, lineOf(shortPing, "ping-int"), "resource[0].ping-int",
                "must be shorter than connect-int 10 s and ping-int 6 s");
    }

    @Test
    void protocolOtherThanABC_listsTheAllowedValues() {
        String text = valid("protocol = \"c\"");
        assertOnlyProblem(text, lineOf(text, "protocol"), "resource[0].protocol",
                "'c' is not a replication protocol (allowed: \"A\", \"B\", \"C\"; default \"C\")");
    }

    @Test
    void badSizes_areReported() {
        String unit = valid("").replace("size = \"1GiB\"", "size = \"1XB\"");
        assertOnlyProblem(unit, lineOf(unit, "size"), "resource[0].size", "not a size: '1XB'");
        String unaligned = valid("").replace("size = \"1GiB\"", "size = 1000");
        assertOnlyProblem(unaligned, lineOf(unaligned, "size"), "resource[0].size",
                "1000 bytes is not a positive multiple of 4KiB");
        String zero = valid("").replace("size = \"1GiB\"", "size = \"0\"");
        assertOnlyProblem(zero, lineOf(zero, "size"), "resource[0].size", "is not a positive multiple of 4KiB");
    }

    @Test
    void ratesNeedAUnitAndARange() {
        String bare = valid("resync-rate = 250");
        assertOnlyProblem(bare, lineOf(bare, "resync-rate"), "resource[0].resync-rate",
                "must be a rate with a unit in quotes, e.g. \"250K\" or \"100M\"");
        String tooLow = valid("c-max-rate = \"100K\"");
        assertOnlyProblem(tooLow, lineOf(tooLow, "c-max-rate"), "resource[0].c-max-rate",
                "100K is out of range: c-max-rate is 250K..4G");
    }

    @Test
    void sharedSecretTooLong_isReportedWithoutEchoingIt() {
        String secret = "x".repeat(65);
        String text = valid("shared-secret = \"" + secret + "\"");
        ClusterConfigException e = problems(text);
        assertProblem(e, lineOf(text, "shared-secret"), "resource[0].shared-secret",
                "has 65 characters; allowed: 1 to 64");
        assertFalse(e.getMessage().contains(secret), e.getMessage());
    }

    @Test
    void afterSbPolicies_areValidated() {
        String text = valid("after-sb-0pri = \"discard-node-gamma\"\nafter-sb-1pri = \"violently-as0p\"\n"
                + "after-sb-2pri = \"call-pri-lost-after-sb\"");
        ClusterConfigException e = problems(text);
        assertEquals(3, e.problems().size(), e::getMessage);
        assertProblem(e, lineOf(text, "after-sb-0pri"), "resource[0].after-sb-0pri",
                "'discard-node-gamma' names no node of this cluster (nodes: alpha, beta)");
        assertProblem(e, lineOf(text, "after-sb-1pri"), "resource[0].after-sb-1pri",
                "(allowed: disconnect, consensus, discard-secondary)");
        assertProblem(e, lineOf(text, "after-sb-2pri"), "resource[0].after-sb-2pri", "(allowed: disconnect)");
    }

    @Test
    void maxPeersBelowNodesMinusOne_isReported() {
        String third = """

                [[node]]
                name = "gamma"
                id = 2
                address = "127.0.0.1:7791"
                nbd = "127.0.0.1:10811"
                admin = "/run/replstor/gamma.sock"
                """;
        String text = CLUSTER + NODES + third + resource("max-peers = 1").replace(
                "  [resource.on.beta]", "  [resource.on.gamma]\n  disk = \"/dev/g\"\n  [resource.on.beta]");
        assertOnlyProblem(text, lineOf(text, "max-peers"), "resource[0].max-peers",
                "1 bitmap slots cannot track the 2 other nodes of this cluster; allowed: 2..31");
    }

    // ---- uniqueness ----

    @Test
    void duplicateNodeNamesIdsAndAdminSockets_areReportedAtTheSecond() {
        String text = valid("").replace("name = \"beta\"", "name = \"alpha\"").replace("id = 1", "id = 0")
                .replace("/run/replstor/beta.sock", "/run/replstor/alpha.sock");
        ClusterConfigException e = problems(text);
        int second = lineOf(text, "address = \"127.0.0.1:7790\"");
        assertProblem(e, second - 2, "node[1].name", "node name 'alpha' is already used by node[0]");
        assertProblem(e, second - 1, "node[1].id", "node id 0 is already used by node[0]");
        assertProblem(e, second + 2, "node[1].admin", "is already used by node[0]");
    }

    @Test
    void duplicateListenAddresses_areReportedAcrossReplicationAndNbd() {
        String text = valid("").replace("address = \"127.0.0.1:7790\"", "address = \"127.0.0.1:10809\"");
        assertOnlyProblem(text, lineOf(text, "address = \"127.0.0.1:10809\""), "node[1].address",
                "127.0.0.1:10809 is already used by node[0].nbd (line " + lineOf(text, "nbd = \"127.0.0.1:10809\"")
                        + "); every listener needs its own host:port");
    }

    @Test
    void badAddresses_sayWhatIsExpected() {
        String text = valid("").replace("127.0.0.1:7790", "::1:7790").replace("127.0.0.1:10810", "beta:http");
        ClusterConfigException e = problems(text);
        assertProblem(e, lineOf(text, "::1:7790"), "node[1].address", "write an IPv6 address in brackets");
        assertProblem(e, lineOf(text, "beta:http"), "node[1].nbd", "has no numeric port");
    }

    @Test
    void duplicateResourceNames_areReported() {
        String text = valid("") + "\n" + resource("").replace("alpha-r0", "alpha-r1").replace("beta-r0", "beta-r1");
        ClusterConfigException e = problems(text);
        assertEquals(1, e.problems().size(), e::getMessage);
        assertTrue(e.problems().get(0).contains("resource[1].name: resource name 'r0' is already used by resource[0]"),
                e.getMessage());
    }

    @Test
    void sameDiskForTwoResourcesOnOneNode_isReported() {
        String text = valid("") + "\n" + resource("").replace("name = \"r0\"", "name = \"r1\"")
                .replace("beta-r0", "beta-r1");
        int second = text.lastIndexOf("alpha-r0.img");
        int line = (int) text.substring(0, second).chars().filter(c -> c == '\n').count() + 1;
        assertOnlyProblem(text, line, "resource[1].on.alpha.disk",
                "/var/lib/replstor/alpha-r0.img on node 'alpha' is already the resource 'r0' disk");
    }

    // ---- [resource.on.NODE] ----

    @Test
    void resourceWithoutEntryForANode_namesTheNode() {
        String text = valid("").replace("  [resource.on.beta]\n  disk = \"/var/lib/replstor/beta-r0.img\"\n", "");
        assertOnlyProblem(text, lineOf(text, "[resource.on.alpha]"), "resource[0].on",
                "no entry for node 'beta': add [resource.on.beta] with disk = \"...\"");
    }

    @Test
    void resourceWithoutAnyOnTable_isReported() {
        String text = CLUSTER + NODES + "[[resource]]\nname = \"r0\"\nsize = \"1G\"\n";
        assertOnlyProblem(text, lineOf(text, "[[resource]]"), "resource[0].on",
                "missing: add [resource.on.NODE] with disk = \"...\" for each node (alpha, beta)");
    }

    @Test
    void onEntryForUnknownNode_listsTheNodes() {
        String text = valid("") + "  [resource.on.gamma]\n  disk = \"/dev/x\"\n";
        assertOnlyProblem(text, lineOf(text, "[resource.on.gamma]"), "resource[0].on.gamma",
                "unknown node 'gamma' (nodes: alpha, beta)");
    }

    @Test
    void dottedNodeNameNotQuoted_getsAHint() {
        String text = CLUSTER + NODES.replace("name = \"beta\"", "name = \"beta.lan\"") + "\n"
                + resource("").replace("[resource.on.beta]", "[resource.on.beta.lan]");
        ClusterConfigException e = problems(text);
        assertProblem(e, lineOf(text, "[resource.on.beta.lan]"), "resource[0].on.beta",
                "a name with dots must be quoted: [resource.on.\"beta.lan\"]");
    }

    @Test
    void relativeOrMissingDiskPaths_areReported() {
        String text = valid("").replace("disk = \"/var/lib/replstor/alpha-r0.img\"",
                "disk = \"alpha-r0.img\"\n  meta-disk = \"md0\"").replace("  disk = \"/var/lib/replstor/beta-r0.img\"\n",
                "");
        ClusterConfigException e = problems(text);
        assertEquals(3, e.problems().size(), e::getMessage);
        assertProblem(e, lineOf(text, "alpha-r0.img"), "resource[0].on.alpha.disk",
                "'alpha-r0.img' is not an absolute path");
        assertProblem(e, lineOf(text, "md0"), "resource[0].on.alpha.meta-disk", "'md0' is not an absolute path");
        assertProblem(e, lineOf(text, "[resource.on.beta]"), "resource[0].on.beta.disk",
                "missing (the backing device or file, an absolute path)");
    }

    @Test
    void adminSocketPathTooLong_isReported() {
        String longPath = "/run/" + "x".repeat(110) + ".sock";
        String text = valid("").replace("/run/replstor/beta.sock", longPath);
        assertOnlyProblem(text, lineOf(text, longPath), "node[1].admin", "a Unix socket path is at most 107 bytes");
    }

    @Test
    void invalidNames_sayWhatIsAllowed() {
        String text = valid("").replace("name = \"r0\"", "name = \"my volume\"").replace("name = \"test\"",
                "name = \"-x\"");
        ClusterConfigException e = problems(text);
        assertProblem(e, lineOf(text, "my volume"), "resource[0].name", "'my volume' is not a valid name (letters,");
        assertProblem(e, lineOf(text, "-x"), "cluster.name", "'-x' is not a valid name");
    }

    // ---- the cluster store: quorum, witnesses, Raft endpoints

    private static final String STORE_NODES = """
            [[node]]
            name = "alpha"
            id = 0
            address = "127.0.0.1:7789"
            nbd = "127.0.0.1:10809"
            admin = "/run/replstor/alpha.sock"
            raft = "127.0.0.1:7788"
            raft-dir = "/var/lib/replstor/raft-alpha"

            [[node]]
            name = "beta"
            id = 1
            address = "127.0.0.1:7790"
            nbd = "127.0.0.1:10810"
            admin = "/run/replstor/beta.sock"
            raft = "127.0.0.1:7787"

            [[node]]
            name = "tie"
            id = 2
            role = "witness"
            admin = "/run/replstor/tie.sock"
            raft = "127.0.0.1:7786"
            """;

    private static String withWitness(String clusterOptions, String resourceOptions) {
        return "[cluster]\nname = \"test\"\n" + clusterOptions + "\n" + STORE_NODES + "\n" + resource(resourceOptions);
    }

    @Test
    void twoDataNodesAndAWitness_formAStoreWithTheWitnessHoldingNoResource() throws Exception {
        ClusterConfig c = parse(withWitness("shared-secret = \"s3cret\"\nlease-timeout = 50",
                "on-no-quorum = \"io-error\""));
        assertTrue(c.hasStore());
        assertEquals(ClusterConfig.Quorum.MAJORITY, c.quorum());
        assertEquals(List.of("alpha", "beta"), c.dataNodes().stream().map(NodeConfig::name).toList());
        assertEquals(List.of("tie"), c.witnesses().stream().map(NodeConfig::name).toList());
        NodeConfig tie = c.node("tie").orElseThrow();
        assertTrue(tie.isWitness());
        assertEquals(null, tie.address());
        assertEquals(null, tie.nbd());
        assertEquals(HostPort.parse("127.0.0.1:7786"), tie.raft());
        assertEquals(NodeConfig.RAFT_DIR_DEFAULT, tie.raftDir());
        assertEquals(Path.of("/var/lib/replstor/raft-alpha"), c.node("alpha").orElseThrow().raftDir());
        assertEquals(Optional.of("s3cret"), c.sharedSecret());
        assertEquals(Duration.ofSeconds(5), c.leaseTimeout());
        ResourceConfig r0 = c.resource("r0").orElseThrow();
        assertEquals(ResourceConfig.OnNoQuorum.IO_ERROR, r0.onNoQuorum());
        assertEquals(1, r0.maxPeers(), "a witness takes no bitmap slot");
        assertTrue(r0.on("tie").isEmpty());
        assertEquals(List.of("beta"), c.peersOf("alpha").stream().map(NodeConfig::name).toList());
        assertFalse(c.toString().contains("s3cret"), c::toString);
    }

    @Test
    void storeDefaults_areMajorityAThreeSecondLeaseAndSuspendIo() throws Exception {
        ClusterConfig c = parse(withWitness("", ""));
        assertEquals(Duration.ofSeconds(3), c.leaseTimeout());
        assertEquals(Optional.empty(), c.sharedSecret());
        assertEquals(ResourceConfig.OnNoQuorum.SUSPEND_IO, c.resource("r0").orElseThrow().onNoQuorum());
    }

    @Test
    void aWitnessWithAResource_isRefusedNamingIt() {
        String text = withWitness("", "") + "  [resource.on.tie]\n  disk = \"/var/lib/replstor/tie-r0.img\"\n";
        assertOnlyProblem(text, lineOf(text, "[resource.on.tie]"), "resource[0].on.tie",
                "'tie' is a witness: it votes in the cluster store and holds no disk");
    }

    @Test
    void aWitnessWithListeners_isRefused() {
        String text = withWitness("", "").replace("role = \"witness\"", "role = \"witness\"\nnbd = \"127.0.0.1:10811\"");
        assertOnlyProblem(text, lineOf(text, "10811"), "node[2].nbd", "a witness has no NBD listener");
    }

    @Test
    void twoDataNodesWithoutWitness_needQuorumOffSaidExplicitly() {
        String text = valid("").replace("quorum = \"off\"\n", "");
        ClusterConfigException e = problems(text);
        assertProblem(e, lineOf(text, "[cluster]"), "cluster.quorum",
                "two data nodes without a witness cannot keep a majority when either fails");
        assertProblem(e, lineOf(text, "[cluster]"), "cluster.quorum", "or set quorum = \"off\"");
    }

    @Test
    void quorumOffWithAWitness_isRefused() {
        String text = withWitness("quorum = \"off\"", "");
        assertOnlyProblem(text, lineOf(text, "quorum"), "cluster.quorum", "remove the witness tie");
    }

    @Test
    void duplicateRaftAddresses_areRefused() {
        String text = withWitness("", "").replace("raft = \"127.0.0.1:7786\"", "raft = \"127.0.0.1:7788\"");
        assertOnlyProblem(text, lineOf(text, "role = \"witness\"") + 2, "node[2].raft",
                "127.0.0.1:7788 is already used by node[0].raft");
    }

    @Test
    void aRaftAddressClashingWithAReplicationListener_isRefused() {
        String text = withWitness("", "").replace("raft = \"127.0.0.1:7787\"", "raft = \"127.0.0.1:7789\"");
        assertOnlyProblem(text, lineOf(text, "raft = \"127.0.0.1:7789\""), "node[1].raft",
                "is already used by node[0].address");
    }

    @Test
    void storeMembersWithoutRaftAddress_areNamed() {
        String text = withWitness("", "").replace("raft = \"127.0.0.1:7787\"\n", "");
        assertOnlyProblem(text, lineOf(text, "[cluster]"), "node[1].raft", "node 'beta' needs the host:port");
    }

    @Test
    void aSingleDataNode_isAStoreOfOneWithoutRaftAddress() throws Exception {
        String text = "[cluster]\nname = \"one\"\n[[node]]\nname = \"solo\"\nid = 0\naddress = \"127.0.0.1:7789\"\n"
                + "nbd = \"127.0.0.1:10809\"\nadmin = \"/run/replstor/solo.sock\"\n";
        ClusterConfig c = parse(text);
        assertTrue(c.hasStore());
        assertEquals(null, c.nodes().get(0).raft());
    }

    @Test
    void badStoreValues_sayWhatIsAllowed() {
        String text = withWitness("quorum = \"most\"\nlease-timeout = 5", "on-no-quorum = \"freeze\"")
                .replace("role = \"witness\"", "role = \"arbiter\"");
        ClusterConfigException e = problems(text);
        assertProblem(e, lineOf(text, "most"), "cluster.quorum", "'most' is not a quorum mode (allowed: \"majority\"");
        assertProblem(e, lineOf(text, "lease-timeout"), "cluster.lease-timeout", "5 is out of range");
        assertProblem(e, lineOf(text, "freeze"), "resource[0].on-no-quorum", "'freeze' is not allowed");
        assertProblem(e, lineOf(text, "arbiter"), "node[2].role", "'arbiter' is not a node role");
    }
}
