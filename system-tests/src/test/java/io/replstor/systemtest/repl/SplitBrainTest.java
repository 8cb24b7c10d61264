package io.replstor.systemtest.repl;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.replstor.systemtest.support.CommandResult;
import io.replstor.systemtest.support.ExternalCommand;
import io.replstor.systemtest.support.TestData;
import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * DRBD's split brain: both nodes go StandAlone, both are forced Primary and each gets different data through NBD
 * (qemu-io). On reconnect both refuse and stay StandAlone with the split brain in {@code last_error} and in
 * {@code events --now}. The operator picks the victim: {@code secondary} and {@code connect --discard-my-data} on
 * beta, {@code connect} on alpha; beta resyncs from alpha and ends with alpha's data.
 */
@Tag("system")
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class SplitBrainTest {
    private static final int MIB = 1 << 20;
    private static final Duration QEMU_IO_TIMEOUT = Duration.ofSeconds(60);

    @RegisterExtension
    final ReplFixture fixture = new ReplFixture();

    @Test
    void splitBrainIsDetectedAndResolvedByDiscardingTheVictimsData() throws Exception {
        ReplCluster cluster = fixture.cluster(ClusterSpec.twoNodes()).initializeUpToDate();
        ReplNode alpha = cluster.alpha();
        ReplNode beta = cluster.beta();

        alpha.verb("disconnect");
        beta.verb("disconnect");
        cluster.awaitAll("both StandAlone", v -> "StandAlone".equals(v.peer().connection()), ReplCluster.DEFAULT_WAIT);
        alpha.verb("primary", "--force");
        beta.verb("primary", "--force");
        qemuIo(alpha.nbdUri(), "write -P 0x11 0 1M", "write -P 0x13 8M 1M");
        qemuIo(beta.nbdUri(), "write -P 0x22 0 1M", "write -P 0x24 16M 1M");

        alpha.verb("connect");
        beta.verb("connect");
        var refused = cluster.awaitAll("both StandAlone again after refusing the split brain",
                v -> "StandAlone".equals(v.peer().connection())
                        && ReplFixture.lower(v.peer().lastError()).contains("split brain"), ReplCluster.DEFAULT_WAIT);
        for (ReplNode node : cluster.nodes()) {
            CommandResult events = node.eventsNow().assertSuccess();
            assertTrue(ReplFixture.lower(events.stdout()).contains("split brain"),
                    () -> node.name() + ": events --now must show the split brain:\n" + events.describe());
            assertEquals("Primary", refused.get(node.name()).role(), refused.get(node.name())::toString);
        }

        beta.verb("secondary");
        beta.verb("connect", "--discard-my-data");
        alpha.verb("connect");
        cluster.awaitInSync();
        ResourceView a = alpha.status();
        ResourceView b = beta.status();
        assertEquals("Primary", a.role(), a::toString);
        assertEquals("Secondary", b.role(), b::toString);
        assertTrue(b.peer().resyncReceivedBytes() >= 2L * MIB,
                () -> "beta must have received at least both nodes' changes (2 MiB each):\n" + b);

        cluster.stopAll();
        assertBytes(beta, 0, (byte) 0x11);
        assertBytes(beta, 8L * MIB, (byte) 0x13);
        assertBytes(beta, 16L * MIB, (byte) 0);
        cluster.assertDataAreasIdentical();
        System.out.println("split brain: beta discarded its data and received " + b.peer().resyncReceivedBytes()
                + " bytes from alpha");
    }

    private static void qemuIo(String uri, String... commands) {
        String[] args = new String[2 + 2 * commands.length + 1];
        args[0] = "-f";
        args[1] = "raw";
        for (int i = 0; i < commands.length; i++) {
            args[2 + 2 * i] = "-c";
            args[3 + 2 * i] = commands[i];
        }
        args[args.length - 1] = uri;
        ExternalCommand.of("qemu-io", args).timeout(QEMU_IO_TIMEOUT).runSuccessfully();
    }

    private static void assertBytes(ReplNode node, long offset, byte value) throws Exception {
        byte[] expected = new byte[MIB];
        Arrays.fill(expected, value);
        assertArrayEquals(expected, TestData.read(node.disk(), offset, MIB),
                () -> node.name() + ": 1 MiB at " + offset + " must be 0x" + Integer.toHexString(value & 0xff));
    }
}
