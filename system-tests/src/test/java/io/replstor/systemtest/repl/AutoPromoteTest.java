package io.replstor.systemtest.repl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.replstor.systemtest.support.BackgroundProcess;
import io.replstor.systemtest.support.CommandResult;
import io.replstor.systemtest.support.ExternalCommand;
import io.replstor.systemtest.support.Tools;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * auto-promote, the DRBD 9 way: with both nodes Secondary, the first NBD client of a node promotes it and its
 * last client leaving demotes it; while one node is Primary, a client of the other node is refused during the
 * NBD handshake with a message that says why and where the Primary is; and an explicit `secondary` is refused
 * while a client is connected.
 */
@Tag("system")
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class AutoPromoteTest {
    @RegisterExtension
    final ReplFixture fixture = new ReplFixture();

    @Test
    void theFirstClientPromotesAndOtherNodesRefuseItsClients() throws Exception {
        ReplCluster cluster = fixture.cluster(ClusterSpec.twoNodes().protocol("C")).initializeUpToDate();
        ReplNode alpha = cluster.alpha();
        ReplNode beta = cluster.beta();
        assertEquals("Secondary", alpha.status().role());

        // a short client: promoted for its writes, demoted when it leaves
        ExternalCommand.of("qemu-io", "-f", "raw", alpha.nbdUri(), "-c", "write -P 0x5a 0 1M")
                .timeout(Duration.ofSeconds(30)).runSuccessfully();
        cluster.await(alpha, "demoted after the last client left", v -> "Secondary".equals(v.role()));

        // a client that stays: alpha is Primary while it is connected
        BackgroundProcess holder = fixture.startHelper(List.of(Tools.require("/usr/bin/python3").toString(), "-c",
                "import nbd, sys, time\nh = nbd.NBD()\nh.connect_uri(sys.argv[1])\nprint('connected', flush=True)\n"
                        + "time.sleep(60)\n", alpha.nbdUri()), "holder.log");
        cluster.await(alpha, "promoted by its client", v -> "Primary".equals(v.role()));
        cluster.await(beta, "sees alpha Primary", v -> "Primary".equals(v.peer().peerRole()));

        CommandResult refused = ExternalCommand.of("qemu-img", "info", beta.nbdUri())
                .timeout(Duration.ofSeconds(30)).run();
        String why = refused.describe();
        assertNotEquals(0, refused.exitCode(), why);
        assertTrue(refused.stderr().contains("cannot be used on beta"), why);
        assertTrue(refused.stderr().contains("the Primary is alpha (nbd://" + alpha.nbdUri().substring(6)), why);
        assertEquals("Secondary", beta.status().role());

        CommandResult inUse = alpha.replctl("secondary");
        assertNotEquals(0, inUse.exitCode(), inUse.describe());
        assertTrue(inUse.stderr().contains("NBD client"), inUse.describe());

        holder.stop();
        cluster.await(alpha, "demoted after its client left", v -> "Secondary".equals(v.role()));
        // now beta's first client promotes beta, and reads what alpha's first client wrote
        ExternalCommand.of("qemu-io", "-f", "raw", beta.nbdUri(), "-c", "read -P 0x5a 0 1M")
                .timeout(Duration.ofSeconds(30)).runSuccessfully();
        cluster.await(beta, "demoted again", v -> "Secondary".equals(v.role()));
    }
}
