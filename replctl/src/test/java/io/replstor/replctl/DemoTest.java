package io.replstor.replctl;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.replstor.replicator.config.ClusterConfig;
import io.replstor.replicator.config.NodeConfig;
import io.replstor.replicator.config.ReplicationProtocol;
import io.replstor.replicator.config.ResourceConfig;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The demo: its generated configuration, and the whole start/stop flow with a stand-in daemon
 * ({@link FakeRepld}, a real child JVM serving the admin API) in place of repld.
 */
class DemoTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;
    private final List<Process> extra = new ArrayList<>();

    @BeforeEach
    void standIn() throws Exception {
        Path script = tmp.resolve("fake-repld");
        Files.writeString(script, "#!/bin/sh\nexec '" + Path.of(System.getProperty("java.home"), "bin", "java")
                + "' -Xshare:auto -XX:TieredStopAtLevel=1 -cp '" + System.getProperty("java.class.path")
                + "' io.replstor.replctl.FakeRepld \"$@\"\n");
        Files.setPosixFilePermissions(script, PosixFilePermissions.fromString("rwxr-xr-x"));
        Map<String, String> env = Map.of("REPLSTOR_REPLD", script.toString());
        DemoProcesses.env = env::get;
        DemoCommand.handleSignals = false;
    }

    @AfterEach
    void restore() {
        DemoProcesses.env = System::getenv;
        DemoCommand.handleSignals = true;
        extra.forEach(Process::destroyForcibly);
    }

    @Test
    void generatedConfigurationLoadsWithDistinctPorts() throws Exception {
        DemoCluster demo = new DemoCluster(tmp.resolve("d"));
        Files.createDirectories(demo.dir);
        ClusterConfig c = demo.writeConfig(5, true, 16L << 20, ReplicationProtocol.B, DemoCluster.freePorts(16), 45);
        assertEquals("demo", c.name());
        assertEquals(List.of("alpha", "beta", "gamma", "delta", "epsilon", "witness"),
                c.nodes().stream().map(NodeConfig::name).toList());
        assertTrue(c.hasStore());
        assertTrue(c.sharedSecret().isPresent(), "the store's members authenticate");
        assertEquals(java.time.Duration.ofMillis(4500), c.leaseTimeout(), "--lease-timeout 45");
        NodeConfig w = c.node("witness").orElseThrow();
        assertTrue(w.isWitness());
        assertEquals(5, w.id());
        assertEquals(demo.dir.resolve("witness").resolve("raft"), w.raftDir());
        Set<Integer> ports = new HashSet<>();
        for (int i = 0; i < 5; i++) {
            NodeConfig n = c.nodes().get(i);
            assertEquals(i, n.id());
            assertEquals("127.0.0.1", n.address().host());
            ports.add(n.address().port());
            ports.add(n.nbd().port());
            ports.add(n.raft().port());
            assertEquals(demo.dir.resolve(n.name() + ".sock"), n.admin());
        }
        ports.add(w.raft().port());
        assertEquals(16, ports.size());
        ResourceConfig r = c.resource("r0").orElseThrow();
        assertEquals(16L << 20, r.sizeBytes());
        assertEquals(ReplicationProtocol.B, r.protocol());
        assertEquals(1, r.timers().connectIntSeconds());
        assertEquals(1, r.timers().pingIntSeconds());
        assertEquals(4, r.maxPeers());
        assertEquals(demo.dir.resolve("gamma").resolve("r0.img"), r.on("gamma").orElseThrow().disk());
        assertTrue(r.on("gamma").orElseThrow().internalMetadata());
        assertTrue(demo.configIsOurs());

        DemoCluster one = new DemoCluster(tmp.resolve("one"));
        Files.createDirectories(one.dir);
        ClusterConfig single = one.writeConfig(1, false, 1L << 30, ReplicationProtocol.C, DemoCluster.freePorts(3), null);
        assertEquals(1, single.nodes().size());
        assertEquals(java.time.Duration.ofMillis(100L * ClusterConfig.LEASE_TIMEOUT_DEFAULT), single.leaseTimeout());
    }

    @Test
    void badOptionsAreExitTwo() throws Exception {
        String longDir = tmp.resolve("x".repeat(100)).toString();
        for (String[] args : List.of(new String[] {"demo", "--nodes", "0"}, new String[] {"demo", "--nodes", "6"},
                new String[] {"demo", "--size", "1000", "--dir", tmp.toString()},
                new String[] {"demo", "--protocol", "D"}, new String[] {"demo", "--dir", longDir},
                new String[] {"demo", "--lease-timeout", "9"}, new String[] {"demo", "--lease-timeout", "601"},
                new String[] {"demo", "--witness", "0", "--lease-timeout", "50"})) {
            Cli.Result res = Cli.run(args);
            assertEquals(2, res.exit(), () -> String.join(" ", args) + "\n" + res);
        }
        Files.writeString(tmp.resolve("cluster.toml"), "[cluster]\nname = \"mine\"\n");
        Cli.Result foreign = Cli.run("demo", "--dir", tmp.toString(), "--detach");
        assertEquals(2, foreign.exit(), foreign::toString);
        assertTrue(foreign.err().contains("was not written by replctl demo"), foreign::toString);
    }

    @Test
    void detachedDemoStartsReadyAndDemoDownStopsIt() throws Exception {
        Path dir = tmp.resolve("demo");
        Cli.Result res = Cli.run("demo", "--nodes", "3", "--dir", dir.toString(), "--size", "8MiB", "--detach",
                "--json");
        assertEquals(0, res.exit(), res::toString);
        JsonNode j = JSON.readTree(res.out());
        assertEquals(dir.toString(), j.get("dir").asText());
        assertEquals(dir.resolve("cluster.toml").toString(), j.get("config").asText());
        ClusterConfig c = ClusterConfig.load(dir.resolve("cluster.toml"));
        List<ProcessHandle> daemons = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            JsonNode n = j.get("nodes").get(i);
            NodeConfig nc = c.nodes().get(i);
            assertEquals(nc.name(), n.get("name").asText());
            assertEquals(nc.admin().toString(), n.get("admin").asText());
            assertEquals("nbd://127.0.0.1:" + nc.nbd().port() + "/r0", n.get("nbd").asText());
            assertEquals(j.get("config").asText(), n.get("config").asText());
            long pid = n.get("pid").asLong();
            assertEquals(pid + "\n", Files.readString(dir.resolve(nc.name() + ".pid")));
            daemons.add(ProcessHandle.of(pid).orElseThrow());
            String log = Files.readString(dir.resolve(nc.name() + ".log"));
            assertTrue(log.contains("metadata of r0: node " + i + ", current uuid "), log);
            assertTrue(Files.size(dir.resolve(nc.name()).resolve("r0.img")) > 8L << 20);
        }
        JsonNode w = j.get("nodes").get(3);
        assertEquals("witness", w.get("name").asText());
        assertEquals("witness", w.get("role").asText());
        assertTrue(w.get("pid").asLong() > 0);
        assertEquals(c.node("witness").orElseThrow().admin().toString(), w.get("admin").asText());
        assertTrue(!w.has("nbd"), "a witness serves no NBD");
        assertEquals("data", j.get("nodes").get(0).get("role").asText());
        daemons.add(ProcessHandle.of(w.get("pid").asLong()).orElseThrow());
        String alphaLog = Files.readString(dir.resolve("alpha.log"));
        int clear = alphaLog.indexOf("POST /resources/r0/new-current-uuid {\"clear_bitmap\":true}");
        int primary = alphaLog.indexOf("POST /resources/r0/primary {}");
        assertTrue(clear > 0 && primary > clear, alphaLog);
        assertFalse(Files.readString(dir.resolve("beta.log")).contains("POST"));
        assertTrue(res.err().contains("ready: r0 is Primary on alpha"), res::toString);

        Cli.Result status = Cli.run("status", "--config", dir.resolve("cluster.toml").toString(), "--node", "alpha");
        assertEquals(0, status.exit(), status::toString);
        assertTrue(status.out().startsWith("r0 role:Primary\n  disk:UpToDate\n  beta role:Secondary"
                + " connection:Connected\n"), status::toString);

        Cli.Result again = Cli.run("demo", "--dir", dir.toString(), "--detach");
        assertEquals(1, again.exit(), again::toString);
        assertTrue(again.err().contains("a demo is already running in " + dir), again::toString);

        Cli.Result down = Cli.run("demo", "down", "--dir", dir.toString());
        assertEquals(0, down.exit(), down::toString);
        for (int i = 0; i < 3; i++) {
            String name = c.nodes().get(i).name();
            assertTrue(down.out().contains("stopped " + name + " (pid " + daemons.get(i).pid() + ")"), down::toString);
            assertFalse(Files.exists(dir.resolve(name + ".pid")));
            assertFalse(daemons.get(i).isAlive());
        }
        Cli.Result twice = Cli.run("demo", "down", "--dir", dir.toString());
        assertEquals(0, twice.exit());
        assertEquals("no demo daemons in " + dir + "\n", twice.out());
    }

    @Test
    void aNodeThatFailsIsNamedWithItsLogAndEverythingIsStopped() throws Exception {
        Path dir = tmp.resolve("demo");
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("fail-beta"), "");
        Cli.Result res = Cli.run("demo", "--dir", dir.toString(), "--size", "4MiB", "--detach");
        assertEquals(1, res.exit(), res::toString);
        assertTrue(res.err().contains("replctl: demo: node beta: repld exited with status 3"), res::toString);
        assertTrue(res.err().contains("  boom: simulated failure of beta"), res::toString);
        assertFalse(Files.exists(dir.resolve("alpha.pid")), res::toString);
        assertFalse(Files.exists(dir.resolve("beta.pid")), res::toString);
        assertTrue(res.err().contains("stopped alpha (pid "), res::toString);
    }

    @Test
    void demoDownNeverSignalsAReusedPid() throws Exception {
        Path dir = tmp.resolve("demo");
        Files.createDirectories(dir);
        Process stranger = new ProcessBuilder("sleep", "30").start(); // alive, but not a repld of this demo
        extra.add(stranger);
        Files.writeString(dir.resolve("alpha.pid"), stranger.pid() + "\n");
        Process dead = new ProcessBuilder("true").start();
        dead.waitFor(5, TimeUnit.SECONDS);
        Files.writeString(dir.resolve("beta.pid"), dead.pid() + "\n");
        Cli.Result down = Cli.run("demo", "down", "--dir", dir.toString());
        assertEquals(0, down.exit(), down::toString);
        assertTrue(down.out().contains("alpha: pid " + stranger.pid() + " is not this demo's repld (now: sleep 30):"
                + " left alone"), down::toString);
        assertTrue(down.out().contains("beta: pid " + dead.pid() + " was not running"), down::toString);
        assertTrue(stranger.isAlive());
        assertFalse(Files.exists(dir.resolve("alpha.pid")));
    }
}
