package io.replstor.replicator.sync;

import io.replstor.replicator.sync.AfterSbPolicy.OnePri;
import io.replstor.replicator.sync.AfterSbPolicy.TwoPri;
import io.replstor.replicator.sync.AfterSbPolicy.ZeroPri;
import io.replstor.replicator.sync.SyncDecision.Kind;
import io.replstor.replicator.sync.SyncDecision.Resolution;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.EnumSet;
import java.util.List;
import java.util.Random;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Two nodes live through random histories; at every connect, both decide from their generation
 * identifiers and the decision is checked against what the simulation knows to be true: which
 * generations each node's data went through (its lineage), and the data itself.
 *
 * <p>The model of the identifiers is DRBD's: the first write after losing the peer (or
 * {@code primary --force}) makes a new current UUID, the old one becoming the bitmap UUID if there is
 * none yet, else history; the bitmap counts every block changed since; a crashed Primary marks its
 * activity log (the writes in flight) in its bitmap; a resync copies the union of both bitmaps (or
 * everything) and the target then adopts the source's identifiers; an interrupted resync leaves the
 * target Inconsistent with its old identifiers; a bitmap slot reused for another peer moves its
 * UUID to history and forgets its bits.
 *
 * <p>Ground truth checked at every connect:
 * <ul>
 *   <li>no sync only if both went through the same generations and hold the same data;</li>
 *   <li>a resync never goes from the side that is behind, nor between diverged sides unless a split
 *       brain was resolved (policy, --discard-my-data) or the target is Inconsistent;</li>
 *   <li>a bitmap-based resync, done, leaves the two disks identical;</li>
 *   <li>a split brain is reported exactly when the lineages diverged; an auto-recoverable one has
 *       every differing block in the union of the bitmaps;</li>
 *   <li>both sides reach mirrored decisions.</li>
 * </ul>
 */
@Timeout(60)
class SyncHistorySimulationTest {
    private static final int SCENARIOS = 3_000;
    private static final int MAX_STEPS = 40;
    private static final int BLOCKS = 32;

    @Test
    void everyDecisionMatchesSimulatedGroundTruth_defaultPolicy() {
        run(false);
    }

    @Test
    void everyDecisionMatchesSimulatedGroundTruth_randomAfterSbPolicies() {
        run(true);
    }

    private static void run(boolean randomPolicies) {
        long seed = Long.getLong("replstor.test.seed", System.nanoTime());
        Random seeds = new Random(seed);
        Set<SyncRule> rulesSeen = EnumSet.noneOf(SyncRule.class);
        Set<Kind> kindsSeen = EnumSet.noneOf(Kind.class);
        for (int i = 0; i < SCENARIOS; i++) {
            long scenarioSeed = seeds.nextLong();
            World w = new World(scenarioSeed, randomPolicies);
            try {
                w.run(1 + w.rnd.nextInt(MAX_STEPS));
            } catch (AssertionError e) {
                fail("seed " + seed + " (-Dreplstor.test.seed=" + seed + "), scenario " + i + ": " + e.getMessage()
                        + "\npolicy: " + w.policy + "\nhistory:\n" + w.trace, e);
            }
            rulesSeen.addAll(w.rulesSeen);
            kindsSeen.addAll(w.kindsSeen);
        }
        // the simulation must reach the interesting cases, or it proves little
        for (SyncRule r : List.of(SyncRule.EQUAL_CURRENT, SyncRule.PEER_BITMAP_IS_MY_CURRENT,
                SyncRule.MY_BITMAP_IS_PEER_CURRENT, SyncRule.MY_CURRENT_IN_PEER_HISTORY,
                SyncRule.PEER_CURRENT_IN_MY_HISTORY, SyncRule.EQUAL_BITMAP, SyncRule.COMMON_HISTORY,
                SyncRule.JUST_CREATED, SyncRule.PEER_JUST_CREATED)) {
            assertTrue(rulesSeen.contains(r), "seed " + seed + ": no scenario reached " + r + "; seen " + rulesSeen);
        }
        for (Kind k : List.of(Kind.NO_SYNC, Kind.BITMAP_SYNC_SOURCE, Kind.BITMAP_SYNC_TARGET, Kind.FULL_SYNC_SOURCE,
                Kind.FULL_SYNC_TARGET, Kind.SPLIT_BRAIN_AUTO_RECOVERABLE, Kind.SPLIT_BRAIN,
                Kind.NO_CONSISTENT_SOURCE)) {
            assertTrue(kindsSeen.contains(k), "seed " + seed + ": no scenario reached " + k + "; seen " + kindsSeen);
        }
    }

    /** One node: its identifiers as the metadata holds them, and the truth the test keeps beside them. */
    private static final class Node {
        final int id;
        final String name;
        long current;
        long bitmapUuid;
        final List<Long> history = new ArrayList<>();   // newest first
        boolean consistent = true;
        boolean crashedPrimary;
        boolean primary;
        boolean rotatedSinceConnected;
        final int[] data = new int[BLOCKS];
        BitSet bitmap = new BitSet(BLOCKS);            // blocks changed since in sync with the peer
        List<Long> lineage = new ArrayList<>();        // generations the data went through (masked)

        Node(int id, String name, long generation) {
            this.id = id;
            this.name = name;
            this.current = generation;
            lineage.add(GenerationIds.masked(generation));
        }

        SyncSide side(boolean discardMyData) {
            return new SyncSide(id, name, new GenerationIds(current, bitmapUuid, history, consistent, crashedPrimary),
                    primary, bitmap.cardinality(), discardMyData);
        }

        @Override
        public String toString() {
            return name + "{current=" + GenerationIds.format(current) + " bitmap=" + GenerationIds.format(bitmapUuid)
                    + " history=" + history.stream().map(GenerationIds::format).toList() + " consistent=" + consistent
                    + " crashedPrimary=" + crashedPrimary + " primary=" + primary + " dirty=" + bitmap
                    + " lineage=" + lineage.stream().map(GenerationIds::format).toList() + "}";
        }
    }

    private enum Relation { EQUAL, A_AHEAD, B_AHEAD, DIVERGED, UNRELATED }

    private static final class World {
        final Random rnd;
        final AfterSbPolicy policy;
        final Node a;
        final Node b;
        boolean connected = true;
        int writeId;
        final StringBuilder trace = new StringBuilder();
        final Set<SyncRule> rulesSeen = EnumSet.noneOf(SyncRule.class);
        final Set<Kind> kindsSeen = EnumSet.noneOf(Kind.class);

        World(long seed, boolean randomPolicy) {
            rnd = new Random(seed);
            int idA = rnd.nextInt(16);
            int idB = 16 + rnd.nextInt(16);
            boolean swap = rnd.nextBoolean();
            long g = newUuid(false);
            a = new Node(swap ? idB : idA, "alpha", g);
            b = new Node(swap ? idA : idB, "beta", g);
            policy = randomPolicy ? randomPolicy(rnd) : AfterSbPolicy.DISCONNECT;
        }

        private static AfterSbPolicy randomPolicy(Random rnd) {
            String[] zero = {"disconnect", "discard-younger-primary", "discard-older-primary", "discard-zero-changes",
                    "discard-least-changes", "discard-node-alpha", "discard-node-beta"};
            return new AfterSbPolicy(ZeroPri.parse(zero[rnd.nextInt(zero.length)]),
                    OnePri.values()[rnd.nextInt(OnePri.values().length)], TwoPri.DISCONNECT);
        }

        long newUuid(boolean primary) {
            long u;
            do {
                u = rnd.nextLong() & ~7L;
            } while (u == 0);
            return primary ? u | GenerationIds.UUID_PRIMARY : u;
        }

        void run(int steps) {
            for (int s = 0; s < steps; s++) {
                step();
            }
            if (!connected) {
                connect();
            }
        }

        void step() {
            Node n = rnd.nextBoolean() ? a : b;
            Node other = n == a ? b : a;
            int r = rnd.nextInt(100);
            if (connected) {
                if (r < 40) {
                    writeConnected(n, other);
                } else if (r < 55) {
                    crashPrimaryWhileConnected(n, other);
                } else if (r < 65) {
                    n.primary = false;
                    log("%s demoted", n.name);
                } else {
                    disconnect();
                }
            } else if (r < 40) {
                writeDisconnected(n);
            } else if (r < 50) {
                forcePromote(n);
            } else if (r < 55) {
                if (n.primary) {
                    n.crashedPrimary = true;
                    n.primary = false;
                    log("%s crashed as Primary while disconnected", n.name);
                }
            } else if (r < 60) {
                n.primary = false;
                log("%s demoted", n.name);
            } else if (r < 64) {
                recreateMetadata(n);
            } else if (r < 67) {
                loseBitmap(n);
            } else {
                connect();
            }
        }

        // ---- events ----

        void writeConnected(Node n, Node other) {
            if (!n.consistent) {
                return; // an Inconsistent disk cannot be promoted without --force
            }
            other.primary = false;
            promote(n);
            for (int blk : blocks()) {
                n.data[blk] = ++writeId;
                other.data[blk] = writeId;
            }
            log("%s writes while connected", n.name);
        }

        /** The Primary crashes with writes in flight: some reached only itself, some only the peer, some both. */
        void crashPrimaryWhileConnected(Node n, Node other) {
            if (!n.consistent) {
                return;
            }
            other.primary = false;
            promote(n);
            for (int blk : blocks()) {
                int w = ++writeId;
                switch (rnd.nextInt(3)) {
                    case 0 -> n.data[blk] = w;
                    case 1 -> other.data[blk] = w;
                    default -> {
                        n.data[blk] = w;
                        other.data[blk] = w;
                    }
                }
                n.bitmap.set(blk); // the activity log's hot extents, marked out of sync on restart
            }
            n.crashedPrimary = true;
            n.primary = false;
            disconnect();
            log("%s crashed as Primary with writes in flight", n.name);
        }

        void writeDisconnected(Node n) {
            if (!n.consistent) {
                return; // an Inconsistent disk cannot be promoted without --force
            }
            promote(n);
            if (!n.rotatedSinceConnected) {
                rotate(n);
            }
            for (int blk : blocks()) {
                n.data[blk] = ++writeId;
                n.bitmap.set(blk);
            }
            log("%s writes while disconnected -> current %s", n.name, GenerationIds.format(n.current));
        }

        void forcePromote(Node n) {
            n.primary = true;
            n.consistent = true;
            rotate(n);
            log("%s primary --force -> current %s", n.name, GenerationIds.format(n.current));
        }

        void recreateMetadata(Node n) {
            n.current = GenerationIds.UUID_JUST_CREATED;
            n.bitmapUuid = 0;
            n.history.clear();
            n.consistent = false;
            n.crashedPrimary = false;
            n.primary = false;
            Arrays.fill(n.data, 0);
            n.bitmap = new BitSet(BLOCKS);
            n.lineage = new ArrayList<>();
            log("%s create-md (fresh metadata, empty disk)", n.name);
        }

        /**
         * The bitmap slot for the peer is reused (another peer took it): the generation it counted from
         * goes to history, and what changed since is no longer known, so only a full sync can follow.
         */
        void loseBitmap(Node n) {
            if (n.bitmapUuid == 0) {
                return;
            }
            n.history.add(0, n.bitmapUuid);
            n.bitmapUuid = 0;
            n.bitmap = new BitSet(BLOCKS);
            log("%s loses its bitmap for the peer (slot reused)", n.name);
        }

        void promote(Node n) {
            if (!n.primary) {
                n.primary = true;
                n.current |= GenerationIds.UUID_PRIMARY; // the role bit follows the role; comparisons mask it
            }
        }

        void rotate(Node n) {
            long old = n.current;
            n.current = newUuid(n.primary);
            if (n.bitmapUuid == 0) {
                n.bitmapUuid = old;
            } else {
                n.history.add(0, old);
            }
            n.rotatedSinceConnected = true;
            n.lineage.add(GenerationIds.masked(n.current));
        }

        void disconnect() {
            connected = false;
            a.rotatedSinceConnected = false;
            b.rotatedSinceConnected = false;
            log("disconnected");
        }

        // ---- connect, decide, check, act ----

        void connect() {
            log("connect: %s / %s", a, b);
            SyncDecision d = decideBothWays(false, false);
            check(d);
            switch (d.kind()) {
                case NO_SYNC -> {
                    connected = true;
                    a.crashedPrimary = false;
                    b.crashedPrimary = false;
                    log("  -> %s", d);
                }
                case BITMAP_SYNC_SOURCE, FULL_SYNC_SOURCE -> resync(a, b, d);
                case BITMAP_SYNC_TARGET, FULL_SYNC_TARGET -> resync(b, a, d);
                case SPLIT_BRAIN_AUTO_RECOVERABLE, SPLIT_BRAIN -> {
                    log("  -> %s", d);
                    if (rnd.nextBoolean()) {
                        discardMyData(d, rnd.nextBoolean() ? a : b);
                    }
                }
                default -> log("  -> %s", d);
            }
        }

        void discardMyData(SyncDecision splitBrain, Node victim) {
            SyncDecision d = decideBothWays(victim == a, victim == b);
            check(d);
            Kind expected = splitBrain.kind() == Kind.SPLIT_BRAIN_AUTO_RECOVERABLE
                    ? (victim == a ? Kind.BITMAP_SYNC_TARGET : Kind.BITMAP_SYNC_SOURCE)
                    : (victim == a ? Kind.FULL_SYNC_TARGET : Kind.FULL_SYNC_SOURCE);
            if (d.kind() != expected || d.resolution() != Resolution.DISCARD_MY_DATA) {
                throw new AssertionError("--discard-my-data on " + victim.name + " after " + splitBrain.kind()
                        + " should give " + expected + " by DISCARD_MY_DATA, got " + d);
            }
            log("  connect --discard-my-data on %s", victim.name);
            resync(victim == a ? b : a, victim, d);
        }

        SyncDecision decideBothWays(boolean discardA, boolean discardB) {
            SyncDecision fromA = SyncDecider.decide(a.side(discardA), b.side(discardB), policy);
            SyncDecision fromB = SyncDecider.decide(b.side(discardB), a.side(discardA), policy);
            if (!fromA.mirrored().equals(fromB)) {
                throw new AssertionError("asymmetric decision:\n  alpha: " + fromA + "\n  beta:  " + fromB);
            }
            rulesSeen.add(fromA.rule());
            kindsSeen.add(fromA.kind());
            return fromA;
        }

        void resync(Node source, Node target, SyncDecision d) {
            BitSet todo = new BitSet(BLOCKS);
            if (d.kind().isFull()) {
                todo.set(0, BLOCKS);
            } else {
                todo.or(source.bitmap);
                todo.or(target.bitmap);
            }
            // both sides hold the union while the resync runs; bits clear as blocks are copied
            source.bitmap = (BitSet) todo.clone();
            target.bitmap = (BitSet) todo.clone();
            target.consistent = false;
            target.primary = false;
            boolean interrupted = rnd.nextInt(5) == 0;
            for (int blk = todo.nextSetBit(0); blk >= 0; blk = todo.nextSetBit(blk + 1)) {
                if (interrupted && rnd.nextBoolean()) {
                    continue;
                }
                target.data[blk] = source.data[blk];
                source.bitmap.clear(blk);
                target.bitmap.clear(blk);
            }
            if (interrupted) {
                log("  -> %s, interrupted: %s stays Inconsistent", d, target.name);
                disconnect();
                return;
            }
            if (!Arrays.equals(source.data, target.data)) {
                throw new AssertionError(d.kind() + " from " + source.name + " to " + target.name
                        + " left the disks different: " + Arrays.toString(source.data) + " vs "
                        + Arrays.toString(target.data));
            }
            // the end of a resync: the target adopts the source's identifiers
            if (source.bitmapUuid != 0) {
                source.history.add(0, source.bitmapUuid);
                source.bitmapUuid = 0;
            }
            target.current = source.current & ~GenerationIds.UUID_PRIMARY;
            target.bitmapUuid = 0;
            target.history.clear();
            target.history.addAll(source.history);
            target.consistent = true;
            target.lineage = new ArrayList<>(source.lineage);
            source.crashedPrimary = false;
            target.crashedPrimary = false;
            connected = true;
            a.rotatedSinceConnected = false;
            b.rotatedSinceConnected = false;
            log("  -> %s, done", d);
        }

        // ---- ground truth ----

        Relation relation() {
            List<Long> la = a.lineage;
            List<Long> lb = b.lineage;
            if (la.equals(lb)) {
                return Relation.EQUAL;
            }
            if (isPrefix(lb, la)) {
                return Relation.A_AHEAD;
            }
            if (isPrefix(la, lb)) {
                return Relation.B_AHEAD;
            }
            for (long g : la) {
                if (lb.contains(g)) {
                    return Relation.DIVERGED;
                }
            }
            return Relation.UNRELATED;
        }

        private static boolean isPrefix(List<Long> shorter, List<Long> longer) {
            return shorter.size() < longer.size() && longer.subList(0, shorter.size()).equals(shorter);
        }

        void check(SyncDecision d) {
            Relation rel = relation();
            String where = d + "\n  relation " + rel + "\n  " + a + "\n  " + b;
            switch (d.kind()) {
                case NO_SYNC -> {
                    require(rel == Relation.EQUAL, "no sync between different generations", where);
                    // two Inconsistent disks (fresh, or a full sync interrupted) hold nothing worth comparing
                    require(Arrays.equals(a.data, b.data) || (!a.consistent && !b.consistent),
                            "no sync between different data", where);
                }
                case BITMAP_SYNC_SOURCE, FULL_SYNC_SOURCE -> checkSync(a, b, d, rel, where);
                case BITMAP_SYNC_TARGET, FULL_SYNC_TARGET -> checkSync(b, a, d, rel, where);
                case SPLIT_BRAIN_AUTO_RECOVERABLE -> {
                    require(rel == Relation.DIVERGED, "split brain reported for lineages that did not diverge", where);
                    BitSet union = (BitSet) a.bitmap.clone();
                    union.or(b.bitmap);
                    for (int blk = 0; blk < BLOCKS; blk++) {
                        require(a.data[blk] == b.data[blk] || union.get(blk),
                                "auto-recoverable split brain, but block " + blk + " differs and is in no bitmap",
                                where);
                    }
                }
                case SPLIT_BRAIN -> require(rel == Relation.DIVERGED,
                        "split brain reported for lineages that did not diverge", where);
                case UNRELATED_DATA -> require(rel == Relation.UNRELATED, "related data reported as unrelated", where);
                case NO_CONSISTENT_SOURCE -> require(!a.consistent && !b.consistent,
                        "no consistent source although one side is consistent", where);
            }
        }

        void checkSync(Node source, Node target, SyncDecision d, Relation rel, String where) {
            require(source.consistent, "resync from an Inconsistent source", where);
            boolean sourceAhead = source == a ? rel == Relation.A_AHEAD : rel == Relation.B_AHEAD;
            switch (d.resolution()) {
                case NONE -> {
                    require(sourceAhead || rel == Relation.EQUAL, "resync from the side that is not newer", where);
                    require(rel != Relation.EQUAL || source.crashedPrimary || target.crashedPrimary,
                            "resync between equal generations without a crashed Primary", where);
                }
                case DISK_STATES -> require(!target.consistent, "disk-state resync to a Consistent target", where);
                case AFTER_SB_0PRI, AFTER_SB_1PRI, DISCARD_MY_DATA -> require(rel == Relation.DIVERGED,
                        "split-brain resolution without a split brain", where);
            }
        }

        private static void require(boolean ok, String what, String where) {
            if (!ok) {
                throw new AssertionError(what + ":\n  " + where);
            }
        }

        int[] blocks() {
            int n = 1 + rnd.nextInt(3);
            int[] out = new int[n];
            for (int i = 0; i < n; i++) {
                out[i] = rnd.nextInt(BLOCKS);
            }
            return out;
        }

        void log(String fmt, Object... args) {
            trace.append("  ").append(String.format(fmt, args)).append('\n');
        }
    }
}
