package io.replstor.systemtest.repl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.replstor.systemtest.support.BackgroundProcess;
import io.replstor.systemtest.support.CommandResult;
import io.replstor.systemtest.support.ExternalCommand;
import io.replstor.systemtest.support.ReplstorRoot;
import io.replstor.systemtest.support.Tools;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * What repld does with a configuration it must refuse and with a stranger. A witness given a disk
 * ({@code [resource.on.witness]}) and two members sharing a raft address are refused at start with exit status 2
 * and a message naming the file, the line and the key(s). A fourth node that is not in the cluster's file, started
 * with its own file that lists it (same cluster name and shared secret), tries to take part in the store: every
 * member refuses it at the raft gateway and logs so, the stranger never gets quorum, and the cluster goes on (a
 * promotion and a write succeed).
 */
@Tag("system")
@Timeout(value = 150, unit = TimeUnit.SECONDS)
class BadInputTest {
    private static final Path REPLD = ReplstorRoot.find().resolve("bin/repld");
    private static final Duration REFUSAL_TIMEOUT = Duration.ofSeconds(30);
    private static final String STRANGER = "delta";

    @RegisterExtension
    final ReplFixture fixture = new ReplFixture();

    @Test
    void aWitnessWithADiskIsRefusedNamingTheFileTheLineAndTheKey() throws IOException {
        ReplCluster cluster = fixture.cluster(ClusterSpec.withWitness(2));
        Path file = cluster.dir().resolve("witness-with-disk.toml");
        String text = Files.readString(cluster.witness().config()) + "[resource.on.witness]\ndisk = \""
                + cluster.dir().resolve("witness.img") + "\"\n";
        Files.writeString(file, text);
        int line = lineOf(text, "[resource.on.witness]");

        CommandResult refused = repld(file, ClusterSpec.WITNESS);
        assertEquals(2, refused.exitCode(), refused::describe);
        assertTrue(refused.stderr().contains(file + ":" + line + ": resource[0].on.witness:"), refused::describe);
        assertTrue(refused.stderr().contains("is a witness"), refused::describe);
        assertFalse(Files.exists(cluster.dir().resolve("witness.sock")), "a refused node must not serve");
        System.out.println("witness with a disk: exit 2: " + refused.stderr().strip());
    }

    @Test
    void twoMembersWithTheSameRaftAddressAreRefusedNamingBothKeys() throws IOException {
        ReplCluster cluster = fixture.cluster(ClusterSpec.withWitness(2));
        String original = Files.readString(cluster.alpha().config());
        String alphaRaft = "raft = \"" + cluster.alpha().raftAddress() + "\"";
        String betaRaft = "raft = \"" + cluster.beta().raftAddress() + "\"";
        String text = original.replace(betaRaft, alphaRaft);
        Path file = cluster.dir().resolve("duplicate-raft.toml");
        Files.writeString(file, text);
        int alphaLine = lineOf(text, alphaRaft);
        int betaLine = text.substring(0, text.lastIndexOf(alphaRaft)).split("\n", -1).length;

        CommandResult refused = repld(file, "alpha");
        assertEquals(2, refused.exitCode(), refused::describe);
        String expected = file + ":" + betaLine + ": node[1].raft: " + cluster.alpha().raftAddress()
                + " is already used by node[0].raft (line " + alphaLine + ")";
        assertTrue(refused.stderr().contains(expected), () -> "expected '" + expected + "':\n" + refused.describe());
        System.out.println("duplicate raft address: exit 2: " + refused.stderr().strip());
    }

    @Test
    void aNodeOutsideTheClusterFileIsRefusedByEveryMemberAndTheClusterGoesOn() throws Exception {
        ReplCluster cluster = fixture.cluster(ClusterSpec.withWitness(2).sizeBytes(16L << 20)).initializeUpToDate();
        Path strangerFile = cluster.dir().resolve(STRANGER + ".toml");
        Path strangerSocket = cluster.dir().resolve(STRANGER + ".sock");
        String member = Files.readString(cluster.alpha().config());
        // the cluster's own file plus a fourth node: same cluster name, same shared secret
        String stranger = member.replace("\n[[resource]]", "\n[[node]]\nname = \"" + STRANGER + "\"\nid = 3\n"
                + "role = \"witness\"\nadmin = \"" + strangerSocket + "\"\nraft = \"127.0.0.1:"
                + TestPorts.free("127.0.0.1") + "\"\nraft-dir = \"" + cluster.dir().resolve(STRANGER + "-raft")
                + "\"\n\n[[resource]]");
        Files.writeString(strangerFile, stranger);
        BackgroundProcess delta = fixture.startHelper(List.of(Tools.require("env").toString(), REPLD.toString(),
                "--config", strangerFile.toString(), "--node", STRANGER), STRANGER + ".log");

        String refusal = "claiming node '" + STRANGER + "'";
        for (ReplNode node : cluster.members()) {
            awaitLog(node, "raft gateway: refused", refusal, delta);
            System.out.println(node.name() + ": " + lineWith(node.log(), refusal));
        }
        for (ReplNode node : cluster.members()) {
            ClusterView v = node.cluster();
            assertTrue(v.gatewayRefused() >= 1 && v.gatewayLastRefusal() != null
                    && v.gatewayLastRefusal().contains(STRANGER), v::toString);
            assertEquals(List.of("alpha", "beta", "witness"), v.members(), v::toString);
        }
        assertTrue(delta.isAlive(), delta::log);
        ClusterView strangers = new ClusterView(STRANGER, AdminSocket.getJson(strangerSocket, "/cluster"));
        assertFalse(strangers.quorum(), () -> "the stranger must not be part of any majority: " + strangers);

        // the cluster goes on
        cluster.alpha().verb("primary");
        ExternalCommand.of("qemu-io", "-f", "raw", cluster.alpha().nbdUri(), "-c", "write -P 0x6d 0 1M")
                .timeout(Duration.ofSeconds(30)).runSuccessfully();
        cluster.awaitCluster("alpha Primary, both in sync", v -> v.primaries().equals(List.of("alpha"))
                && v.inSync().equals(List.of("alpha", "beta")));
        cluster.awaitInSync();
        System.out.println("stranger " + STRANGER + ": no quorum (" + strangers.quorumWhy() + "); alpha promoted "
                + "and wrote 1 MiB meanwhile");
        cluster.stopAll();
        ReplCluster.assertPattern(cluster.beta().disk(), 0, 1 << 20, (byte) 0x6d);
        cluster.assertDataAreasIdentical();
    }

    private static CommandResult repld(Path file, String node) {
        CommandResult r = ExternalCommand.of("env", REPLD.toString(), "--config", file.toString(), "--node", node)
                .timeout(REFUSAL_TIMEOUT).run();
        assertFalse(r.timedOut(), () -> "repld must refuse the file and exit, not run:\n" + r.describe());
        return r;
    }

    private static void awaitLog(ReplNode node, String text, String alsoText, BackgroundProcess delta) {
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (lineWith(node.log(), text, alsoText) == null) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError(node.name() + " did not log '" + text + " ... " + alsoText + "' within 60 s:\n"
                        + ReplFixture.tail(node.log(), 8192) + "\nthe stranger's log:\n"
                        + ReplFixture.tail(delta.log(), 8192));
            }
            ReplNode.sleep(200);
        }
    }

    private static String lineWith(String log, String... texts) {
        for (String l : log.split("\n")) {
            boolean all = true;
            for (String t : texts) {
                all &= l.contains(t);
            }
            if (all) {
                return l;
            }
        }
        return null;
    }

    /** The 1-based number of the line of {@code text} that starts with {@code start}. */
    private static int lineOf(String text, String start) {
        String[] lines = text.split("\n", -1);
        for (int i = 0; i < lines.length; i++) {
            if (lines[i].startsWith(start)) {
                return i + 1;
            }
        }
        throw new AssertionError("no line starting with " + start + " in:\n" + text);
    }
}
