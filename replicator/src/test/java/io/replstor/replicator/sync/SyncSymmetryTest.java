package io.replstor.replicator.sync;

import io.replstor.replicator.sync.AfterSbPolicy.OnePri;
import io.replstor.replicator.sync.AfterSbPolicy.TwoPri;
import io.replstor.replicator.sync.AfterSbPolicy.ZeroPri;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * decide(a, b) and decide(b, a) are mirror images for any identifiers at all, including ones no real
 * history produces: UUIDs drawn from a small pool so that every kind of coincidence happens.
 */
@Timeout(30)
class SyncSymmetryTest {
    private static final int CASES = 100_000;
    private static final long[] POOL = {0, GenerationIds.UUID_JUST_CREATED, GenerationIds.UUID_JUST_CREATED | 1,
            0x10, 0x11, 0x20, 0x21, 0x30, 0x40, 0x51, 0x60};
    private static final String[] ZERO_PRI = {"disconnect", "discard-younger-primary", "discard-older-primary",
            "discard-zero-changes", "discard-least-changes", "discard-node-alpha", "discard-node-beta"};

    @Test
    void decisionsOfBothSidesAreMirrorImages_forArbitraryIdentifiers() {
        long seed = Long.getLong("replstor.test.seed", System.nanoTime());
        Random rnd = new Random(seed);
        for (int i = 0; i < CASES; i++) {
            int idA = rnd.nextInt(32);
            int idB = (idA + 1 + rnd.nextInt(31)) % 32;
            SyncSide a = side(rnd, idA, "alpha");
            SyncSide b = side(rnd, idB, "beta");
            AfterSbPolicy policy = new AfterSbPolicy(ZeroPri.parse(ZERO_PRI[rnd.nextInt(ZERO_PRI.length)]),
                    OnePri.values()[rnd.nextInt(OnePri.values().length)], TwoPri.DISCONNECT);
            int resolveConflicts = rnd.nextBoolean() ? idA : idB;
            SyncDecision ab = SyncDecider.decide(a, b, policy, resolveConflicts);
            SyncDecision ba = SyncDecider.decide(b, a, policy, resolveConflicts);
            int caseNo = i;
            assertEquals(ab.mirrored(), ba, () -> "seed " + seed + " (-Dreplstor.test.seed=" + seed + "), case "
                    + caseNo + ":\n  a = " + a + "\n  b = " + b + "\n  policy = " + policy + ", resolve-conflicts = "
                    + resolveConflicts);
        }
    }

    private static SyncSide side(Random rnd, int id, String name) {
        List<Long> history = new ArrayList<>();
        int n = rnd.nextInt(4);
        for (int i = 0; i < n; i++) {
            history.add(pick(rnd));
        }
        GenerationIds ids = new GenerationIds(pick(rnd), rnd.nextInt(3) == 0 ? 0 : pick(rnd), history,
                rnd.nextInt(4) != 0, rnd.nextInt(4) == 0);
        return new SyncSide(id, name, ids, rnd.nextBoolean(), rnd.nextInt(3), rnd.nextInt(5) == 0);
    }

    private static long pick(Random rnd) {
        return POOL[rnd.nextInt(POOL.length)];
    }
}
