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
import java.time.LocalTime;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.OptionalInt;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The Primary is cut off from everything while it is written to. alpha, the Primary, runs alone in a network
 * namespace (its replication, NBD and raft listeners are there); beta and the witness are on the host side. The
 * writer, {@code tools/nbd-ackcheck.py} at queue depth 32, runs in alpha's namespace too, as an application on
 * alpha's machine would: the cut separates alpha and its client from the rest, not the client from alpha, so what
 * the client sees is alpha's own decision.
 *
 * <p>After the cut alpha acknowledges nothing more (the writer's log of acknowledged writes stops growing; status:
 * quorum false, I/O suspended). beta's {@code replctl primary r0}, tried every 200 ms, is refused naming alpha until
 * alpha's lease has run out, then succeeds; a client writes through beta. When the link is back, alpha learns that
 * it was deposed (Secondary, a newer term), resyncs from beta and ends UpToDate and in sync; every write alpha
 * acknowledged is on beta (nbd-ackcheck verify) and the replicas are identical.
 */
@Tag("system")
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class PrimaryPartitionTest {
    private static final Path CHECKER = ReplstorRoot.find().resolve("system-tests/tools/nbd-ackcheck.py");
    private static final Pattern CHECKED = Pattern.compile("(\\d+) acknowledged blocks checked, (\\d+) missing");
    private static final long SIZE = 64L << 20;
    /** nbd-ackcheck writes in [0, REGION); beta's client writes above it. */
    private static final long REGION = 32L << 20;
    private static final long BETA_WRITE_OFFSET = 48L << 20;
    private static final Duration PROMOTE_WITHIN = Duration.ofSeconds(30);
    private static final long RETRY_MILLIS = 200;
    /** How long the acknowledgement log is watched for growth once alpha is suspended. */
    private static final Duration ACK_WATCH = Duration.ofSeconds(3);

    @RegisterExtension
    final ReplFixture fixture = new ReplFixture();

    @Test
    void aPartitionedPrimaryAcknowledgesNothingAndBetaTakesOverAfterItsLease() throws Exception {
        // 5 s leases: alpha can be deposed 0.85 lease + 0.1 s after the cut at the earliest (its last renewal a
        // quarter lease before it), 4.35 s; a replctl JVM (one to two seconds on two busy cores) starts well within
        // that, so beta's first attempt is always early enough to be refused
        ClusterSpec spec = ClusterSpec.withWitness(2).inNamespace("alpha").sizeBytes(SIZE).leaseTimeoutTenths(50);
        ReplCluster cluster = fixture.cluster(spec).initializeUpToDate();
        ReplNode alpha = cluster.alpha();
        ReplNode beta = cluster.beta();
        NetNamespace ns = cluster.namespace();
        alpha.verb("primary");
        long oldTerm = alpha.status().term();

        Path acks = fixture.dir().resolve("acks.log");
        BackgroundProcess writer = fixture.startHelper(ns.wrap(List.of(Tools.require("/usr/bin/python3").toString(),
                CHECKER.toString(), "write", alpha.nbdUri(), acks.toString(), "--region", String.valueOf(REGION),
                "--qd", "32", "--seconds", "150")), "ackcheck-write.log");
        cluster.await(alpha, "4 MiB of the writer's blocks replicated to beta",
                v -> v.peer().sentBytes() >= (4L << 20), Duration.ofSeconds(60));
        assertTrue(writer.isAlive(), writer::log);

        ns.linkDown();
        long cut = System.nanoTime();
        LocalTime cutClock = LocalTime.now();
        List<String> attempts = Collections.synchronizedList(new ArrayList<>());
        CompletableFuture<Double> promotion = CompletableFuture.supplyAsync(
                () -> promoteBetaWhenAlphasLeaseIsOver(beta, cut, attempts));

        ResourceView suspended = cluster.await(alpha, "cut off: no quorum, I/O suspended",
                v -> !v.quorum() && v.suspended() != null, Duration.ofSeconds(30));
        double suspendedAfter = seconds(cut);
        long acked = acknowledged(acks);

        double promotedAfter = join(promotion);
        System.out.println("beta's replctl primary attempts (s from the cut, outcome):\n  "
                + String.join("\n  ", attempts));
        System.out.printf("partition: alpha suspended %.2f s after the cut (%s); beta promoted %.2f s after the "
                + "cut (lease %.1f s)%n", suspendedAfter, suspended.suspended(), promotedAfter,
                spec.leaseTimeout().toMillis() / 1000.0);
        // alpha's last renewal was sent at most a quarter lease before the cut: its lease ran at least 3/4 lease
        assertTrue(promotedAfter >= 0.75 * spec.leaseTimeout().toMillis() / 1000.0, () -> "beta was promoted "
                + promotedAfter + " s after the cut, before alpha's lease can have run out:\n" + attempts);
        // the same from the nodes' own clocks: alpha knew its lease was gone before beta became Primary
        LocalTime lapsed = firstLogTime(alpha, cutClock, "node alpha: no quorum");
        LocalTime promoted = firstLogTime(beta, cutClock, "resource r0 on beta: Primary in term");
        assertTrue(lapsed.isBefore(promoted), () -> "alpha's lease lapsed at " + lapsed + " (its log), after beta "
                + "became Primary at " + promoted + " (its log): two Primaries with a lease at once");
        System.out.println("logs: alpha's lease lapsed at " + lapsed + ", beta Primary at " + promoted + " ("
                + Duration.between(lapsed, promoted).toMillis() + " ms later)");

        ExternalCommand.of("qemu-io", "-f", "raw", beta.nbdUri(), "-c",
                "write -P 0x5b " + BETA_WRITE_OFFSET + " 1M").timeout(Duration.ofSeconds(30)).runSuccessfully();
        ClusterView store = cluster.awaitCluster("beta the only Primary, in a newer term, alpha out of the in-sync set",
                v -> v.primaries().equals(List.of("beta")) && v.term() > oldTerm && v.inSync().equals(List.of("beta")));

        // alpha, cut off, still believes it is Primary, and acknowledged nothing since it was suspended
        long sleepUntil = System.nanoTime() + ACK_WATCH.toNanos();
        while (System.nanoTime() < sleepUntil) {
            ReplNode.sleep(100);
        }
        long ackedLater = acknowledged(acks);
        ResourceView stillCut = alpha.status();
        assertEquals(acked, ackedLater, () -> "alpha acknowledged writes while cut off, after it was suspended:\n"
                + stillCut);
        assertTrue(writer.isAlive(), () -> "the writer's requests must wait on the cut-off alpha:\n" + writer.log());
        assertEquals("Primary", stillCut.role(), stillCut::toString);
        assertFalse(stillCut.quorum(), stillCut::toString);
        assertTrue(stillCut.suspended() != null, stillCut::toString);
        System.out.printf("while cut off: %d writes acknowledged by alpha in all, none after its suspension (watched "
                + "for %.1f s); the store: %s%n", acked, seconds(cut) - suspendedAfter, store);

        ns.linkUp();
        long restored = System.nanoTime();
        ResourceView deposed = cluster.await(alpha, "learns it was deposed: Secondary in a newer term",
                v -> "Secondary".equals(v.role()) && v.term() > oldTerm, Duration.ofSeconds(60));
        double learnedAfter = seconds(restored);
        cluster.awaitInSync();
        ResourceView a = alpha.status();
        assertEquals("UpToDate", a.disk(), a::toString);
        assertEquals("Established", a.peer().replication(), a::toString);
        assertEquals(0, a.peer().outOfSyncBytes(), a::toString);
        assertTrue(a.peer().resyncReceivedBytes() > 0, () -> "alpha must resync from beta:\n" + a);
        cluster.awaitCluster("alpha back in the in-sync set", v -> v.inSync().equals(List.of("alpha", "beta")));
        System.out.printf("link restored: alpha Secondary in term %d (was Primary in term %d) %.2f s later; "
                + "resynced %d bytes from beta%n", deposed.term(), oldTerm, learnedAfter,
                a.peer().resyncReceivedBytes());

        OptionalInt writerExit = writer.awaitExit(Duration.ofSeconds(30));
        assertTrue(writerExit.isPresent(), () -> "the writer must see its waiting writes fail once alpha learned "
                + "it was deposed:\n" + writer.log());
        CommandResult verify = ExternalCommand.of("/usr/bin/python3", CHECKER.toString(), "verify", beta.nbdUri(),
                acks.toString()).timeout(Duration.ofSeconds(60)).run();
        String context = writer.log() + "\n" + verify.describe();
        Matcher m = CHECKED.matcher(verify.stdout());
        assertTrue(m.find(), context);
        assertTrue(Long.parseLong(m.group(1)) > 500, () -> "too few acknowledged writes to mean anything:\n"
                + context);
        assertEquals("0", m.group(2), context);
        assertEquals(0, verify.exitCode(), context);
        System.out.println("ackcheck: " + m.group(1) + " acknowledged blocks all on beta; writer: "
                + lastLine(writer.log()));

        cluster.stopAll();
        ReplCluster.assertPattern(alpha.disk(), BETA_WRITE_OFFSET, 1 << 20, (byte) 0x5b);
        cluster.assertDataAreasIdentical();
    }

    /**
     * {@code replctl primary r0} on beta every {@value #RETRY_MILLIS} ms until it succeeds; each refusal must name
     * alpha. Returns the seconds from the cut to the end of the successful attempt.
     */
    private static double promoteBetaWhenAlphasLeaseIsOver(ReplNode beta, long cut, List<String> attempts) {
        // the first attempt starts at the cut; a JVM start (about a second) is well inside alpha's lease
        long deadline = System.nanoTime() + PROMOTE_WITHIN.toNanos();
        int refusals = 0;
        while (true) {
            double startedAt = seconds(cut);
            CommandResult r = beta.replctlWithin(Duration.ofSeconds(20), "primary");
            double endedAt = seconds(cut);
            assertFalse(r.timedOut(), r::describe);
            if (r.exitCode() == 0) {
                attempts.add(String.format("%.2f-%.2f promoted: %s", startedAt, endedAt, r.stdout().strip()));
                assertTrue(refusals > 0, () -> "beta was promoted at its first attempt, while alpha's lease "
                        + "could still run:\n" + attempts);
                return endedAt;
            }
            refusals++;
            attempts.add(String.format("%.2f-%.2f refused: %s", startedAt, endedAt, r.stderr().strip()));
            assertTrue(r.stderr().contains("alpha"), () -> "a refusal must name the Primary alpha:\n"
                    + r.describe());
            if (System.nanoTime() > deadline) {
                throw new AssertionError("beta not promoted within " + PROMOTE_WITHIN.toSeconds()
                        + " s of the cut:\n" + String.join("\n", attempts));
            }
            ReplNode.sleep(RETRY_MILLIS);
        }
    }

    private static <T> T join(CompletableFuture<T> future) throws Exception {
        try {
            return future.get(PROMOTE_WITHIN.toSeconds() + 30, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof Error error) {
                throw error;
            }
            throw e;
        }
    }

    /** The time of day of the first line of {@code node}'s current log after {@code after} that holds {@code text}. */
    private static LocalTime firstLogTime(ReplNode node, LocalTime after, String text) {
        for (String line : node.log().split("\n")) {
            if (line.contains(text) && line.length() > 12) {
                try {
                    LocalTime t = LocalTime.parse(line.substring(0, 12));
                    if (t.isAfter(after)) {
                        return t;
                    }
                } catch (DateTimeParseException e) {
                    // not a log line with a time
                }
            }
        }
        throw new AssertionError(node.name() + "'s log has no line with '" + text + "' after " + after + ":\n"
                + ReplFixture.tail(node.log(), 8192));
    }

    /** The writes nbd-ackcheck logged as acknowledged so far ("A seq offset" lines). */
    private static long acknowledged(Path log) throws IOException {
        try (Stream<String> lines = Files.lines(log)) {
            return lines.filter(l -> l.startsWith("A ")).count();
        }
    }

    private static double seconds(long since) {
        return (System.nanoTime() - since) / 1e9;
    }

    private static String lastLine(String log) {
        String[] lines = log.strip().split("\n");
        return lines[lines.length - 1];
    }
}
