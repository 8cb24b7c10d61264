package io.replstor.systemtest.repl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.replstor.systemtest.support.BackgroundProcess;
import io.replstor.systemtest.support.CommandResult;
import io.replstor.systemtest.support.ExternalCommand;
import io.replstor.systemtest.support.ReplstorRoot;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The exact form of "no acknowledged write is lost": {@code system-tests/tools/nbd-ackcheck.py} (libnbd, 32 writes
 * in flight) logs every write the Primary acknowledged; the Primary is killed with SIGKILL mid-run; the Secondary is
 * promoted and every acknowledged block is read back from it and must hold that write (or a newer one that was in
 * flight, or an older one in flight with it: NBD does not order concurrent requests). Unlike fio's verify state this
 * needs no assumption about which writes were in flight.
 */
@Tag("system")
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class AckCheckPrimaryCrashTest {
    private static final Path CHECKER = ReplstorRoot.find().resolve("system-tests/tools/nbd-ackcheck.py");
    private static final Pattern ACKED = Pattern.compile("(\\d+) acknowledged blocks checked, (\\d+) missing");

    @RegisterExtension
    final ReplFixture fixture = new ReplFixture();

    /** The checker's rule of which writes may be the last to a block, on logs written by hand. */
    @Test
    void checkerRuleHoldsOnHandWrittenLogs() throws Exception {
        CommandResult r = ExternalCommand.of(io.replstor.systemtest.support.Tools.require("/usr/bin/python3").toString(),
                CHECKER.toString(), "selftest").timeout(Duration.ofSeconds(30)).run();
        assertEquals(0, r.exitCode(), r.describe());
        assertTrue(r.stdout().contains("cases pass"), r.describe());
    }

    @Test
    void everyAcknowledgedWriteIsOnThePromotedSecondary() throws Exception {
        ReplCluster cluster = fixture.cluster(ClusterSpec.twoNodes().protocol("C")).initializeUpToDate();
        ReplNode alpha = cluster.alpha();
        ReplNode beta = cluster.beta();
        alpha.verb("primary");
        Path log = fixture.dir().resolve("acks.log");
        long sentBefore = alpha.status().peer().sentBytes();
        BackgroundProcess writer = fixture.startHelper(List.of(io.replstor.systemtest.support.Tools.require("/usr/bin/python3").toString(), CHECKER.toString(), "write",
                alpha.nbdUri(), log.toString(), "--region", String.valueOf(64L << 20), "--qd", "32",
                "--seconds", "60"), "ackcheck-write.log");
        cluster.await(alpha, "16 MiB replicated", v -> v.peer().sentBytes() - sentBefore >= (16L << 20),
                Duration.ofSeconds(60));
        assertTrue(writer.isAlive(), () -> "the writer ended before the crash:\n" + writer.log());
        alpha.kill9();
        assertTrue(writer.awaitExit(Duration.ofSeconds(30)).isPresent(), writer::log);
        cluster.await(beta, "lost its Primary", v -> !v.peer().connected() && "UpToDate".equals(v.disk()));
        beta.verb("primary");

        CommandResult verify = ExternalCommand.of("/usr/bin/python3", CHECKER.toString(), "verify", beta.nbdUri(),
                log.toString()).timeout(Duration.ofSeconds(60)).run();
        String context = writer.log() + "\n" + verify.describe();
        Matcher m = ACKED.matcher(verify.stdout());
        assertTrue(m.find(), context);
        assertTrue(Long.parseLong(m.group(1)) > 1000, () -> "too few acknowledged writes to mean anything:\n" + context);
        assertEquals("0", m.group(2), context);
        assertEquals(0, verify.exitCode(), context);
        System.out.println("ackcheck: " + m.group(1) + " acknowledged blocks all on " + beta.name() + " after "
                + alpha.name() + " was killed");
    }
}
