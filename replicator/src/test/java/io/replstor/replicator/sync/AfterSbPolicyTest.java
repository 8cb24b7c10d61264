package io.replstor.replicator.sync;

import io.replstor.replicator.sync.AfterSbPolicy.OnePri;
import io.replstor.replicator.sync.AfterSbPolicy.TwoPri;
import io.replstor.replicator.sync.AfterSbPolicy.ZeroPri;
import io.replstor.replicator.sync.SyncDecision.Kind;
import io.replstor.replicator.sync.SyncDecision.Resolution;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The after-sb policies on a split brain with a common bitmap generation (rule 90). */
@Timeout(10)
class AfterSbPolicyTest {
    private static final long G = 0x1000_0000_0000_0010L;
    private static final long A1 = 0x2000_0000_0000_0020L;
    private static final long B1 = 0x3000_0000_0000_0030L;

    /** alpha (id 0) and beta (id 1) split at G; the role bit of the bitmap UUID says who was Primary then. */
    private static SyncSide alpha(long dirtyBits, boolean primaryNow, boolean primaryAtSplit) {
        long bitmap = primaryAtSplit ? G | GenerationIds.UUID_PRIMARY : G;
        return new SyncSide(0, "alpha", new GenerationIds(A1, bitmap, List.of(), true, false), primaryNow, dirtyBits,
                false);
    }

    private static SyncSide beta(long dirtyBits, boolean primaryNow, boolean primaryAtSplit) {
        long bitmap = primaryAtSplit ? G | GenerationIds.UUID_PRIMARY : G;
        return new SyncSide(1, "beta", new GenerationIds(B1, bitmap, List.of(), true, false), primaryNow, dirtyBits,
                false);
    }

    private static AfterSbPolicy zero(String p) {
        return new AfterSbPolicy(ZeroPri.parse(p), OnePri.DISCONNECT, TwoPri.DISCONNECT);
    }

    private static AfterSbPolicy one(String zeroPri, String onePri) {
        return new AfterSbPolicy(ZeroPri.parse(zeroPri), OnePri.parse(onePri), TwoPri.DISCONNECT);
    }

    private static SyncDecision decide(SyncSide alpha, SyncSide beta, AfterSbPolicy policy) {
        SyncDecision d = SyncDecider.decide(alpha, beta, policy);
        assertEquals(d.mirrored(), SyncDecider.decide(beta, alpha, policy), "beta must mirror alpha");
        assertEquals(SyncRule.EQUAL_BITMAP, d.rule());
        return d;
    }

    private static void assertAlphaDiscarded(Resolution by, SyncDecision d) {
        assertEquals(Kind.BITMAP_SYNC_TARGET, d.kind(), d::toString);
        assertEquals(by, d.resolution(), d::toString);
    }

    private static void assertBetaDiscarded(Resolution by, SyncDecision d) {
        assertEquals(Kind.BITMAP_SYNC_SOURCE, d.kind(), d::toString);
        assertEquals(by, d.resolution(), d::toString);
    }

    private static void assertUnresolved(SyncDecision d) {
        assertEquals(Kind.SPLIT_BRAIN_AUTO_RECOVERABLE, d.kind(), d::toString);
        assertEquals(Resolution.NONE, d.resolution(), d::toString);
    }

    @Test
    void defaultDisconnect_neverResolvesSplitBrain() {
        assertUnresolved(decide(alpha(0, false, false), beta(5, false, false), AfterSbPolicy.DISCONNECT));
        assertUnresolved(decide(alpha(0, true, false), beta(5, false, false), AfterSbPolicy.DISCONNECT));
        assertUnresolved(decide(alpha(0, true, false), beta(5, true, false), AfterSbPolicy.DISCONNECT));
    }

    @Test
    void discardYoungerPrimary_discardsTheNodePromotedAfterTheSplit() {
        SyncDecision d = decide(alpha(9, false, true), beta(1, false, false), zero("discard-younger-primary"));
        assertBetaDiscarded(Resolution.AFTER_SB_0PRI, d);
        assertTrue(d.reason().contains("alpha was Primary when the nodes split, beta was promoted later"), d.reason());
    }

    @Test
    void discardOlderPrimary_discardsTheNodeThatWasPrimaryAtTheSplit() {
        assertAlphaDiscarded(Resolution.AFTER_SB_0PRI,
                decide(alpha(1, false, true), beta(9, false, false), zero("discard-older-primary")));
    }

    @Test
    void discardYoungerPrimary_fallsBackToLeastChangesWhenAgesAreUnknown() {
        SyncDecision d = decide(alpha(3, false, false), beta(9, false, false), zero("discard-younger-primary"));
        assertAlphaDiscarded(Resolution.AFTER_SB_0PRI, d);
        assertTrue(d.reason().contains("using discard-least-changes"), d.reason());
    }

    @Test
    void discardZeroChanges_discardsTheSideThatDidNotWrite() {
        assertAlphaDiscarded(Resolution.AFTER_SB_0PRI,
                decide(alpha(0, false, false), beta(4, false, false), zero("discard-zero-changes")));
        assertBetaDiscarded(Resolution.AFTER_SB_0PRI,
                decide(alpha(4, false, false), beta(0, false, false), zero("discard-zero-changes")));
    }

    @Test
    void discardZeroChanges_disconnectsWhenBothWrote() {
        SyncDecision d = decide(alpha(1, false, false), beta(4, false, false), zero("discard-zero-changes"));
        assertUnresolved(d);
        assertTrue(d.reason().contains("both changed data (alpha 1 blocks, beta 4 blocks)"), d.reason());
    }

    @Test
    void discardZeroChanges_neitherWrote_resolveConflictsNodeYields() {
        SyncDecision d = decide(alpha(0, false, false), beta(0, false, false), zero("discard-zero-changes"));
        assertBetaDiscarded(Resolution.AFTER_SB_0PRI, d);
        SyncDecision explicit = SyncDecider.decide(alpha(0, false, false), beta(0, false, false),
                zero("discard-zero-changes"), 0);
        assertAlphaDiscarded(Resolution.AFTER_SB_0PRI, explicit);
    }

    @Test
    void discardLeastChanges_discardsTheSmallerChangeSet() {
        assertBetaDiscarded(Resolution.AFTER_SB_0PRI,
                decide(alpha(7, false, false), beta(3, false, false), zero("discard-least-changes")));
    }

    @Test
    void discardLeastChanges_tie_resolveConflictsNodeYields() {
        assertBetaDiscarded(Resolution.AFTER_SB_0PRI,
                decide(alpha(5, false, false), beta(5, false, false), zero("discard-least-changes")));
    }

    @Test
    void discardNode_discardsTheNamedNode() {
        assertAlphaDiscarded(Resolution.AFTER_SB_0PRI,
                decide(alpha(9, false, false), beta(1, false, false), zero("discard-node-alpha")));
        assertUnresolved(decide(alpha(9, false, false), beta(1, false, false), zero("discard-node-gamma")));
    }

    @Test
    void zeroPriPolicy_doesNotApplyWhenAPrimaryIsPresent() {
        assertUnresolved(decide(alpha(0, true, false), beta(4, false, false), zero("discard-zero-changes")));
    }

    @Test
    void onePriDiscardSecondary_discardsTheSecondary() {
        assertBetaDiscarded(Resolution.AFTER_SB_1PRI,
                decide(alpha(1, true, false), beta(9, false, false), one("disconnect", "discard-secondary")));
        assertAlphaDiscarded(Resolution.AFTER_SB_1PRI,
                decide(alpha(9, false, false), beta(1, true, false), one("disconnect", "discard-secondary")));
    }

    @Test
    void onePriConsensus_followsZeroPriOnlyWhenItDiscardsTheSecondary() {
        assertBetaDiscarded(Resolution.AFTER_SB_1PRI,
                decide(alpha(4, true, false), beta(0, false, false), one("discard-zero-changes", "consensus")));
        SyncDecision against = decide(alpha(0, true, false), beta(4, false, false),
                one("discard-zero-changes", "consensus"));
        assertUnresolved(against);
        assertTrue(against.reason().contains("does not discard Secondary beta"), against.reason());
        assertUnresolved(decide(alpha(4, true, false), beta(0, false, false), one("disconnect", "consensus")));
    }

    @Test
    void twoPri_alwaysDisconnects() {
        AfterSbPolicy all = new AfterSbPolicy(ZeroPri.parse("discard-zero-changes"), OnePri.DISCARD_SECONDARY,
                TwoPri.DISCONNECT);
        SyncDecision d = decide(alpha(0, true, false), beta(4, true, false), all);
        assertUnresolved(d);
        assertTrue(d.reason().contains("after-sb-2pri disconnect: both are Primary"), d.reason());
    }

    @Test
    void policies_doNotResolveSplitBrainWithoutCommonBitmap() {
        AfterSbPolicy all = new AfterSbPolicy(ZeroPri.parse("discard-zero-changes"), OnePri.DISCARD_SECONDARY,
                TwoPri.DISCONNECT);
        SyncSide a = SyncSide.of(0, "alpha", new GenerationIds(A1, 0, List.of(G), true, false));
        SyncSide b = SyncSide.of(1, "beta", new GenerationIds(B1, 0, List.of(G), true, false));
        SyncDecision d = SyncDecider.decide(a, b, all);
        assertEquals(Kind.SPLIT_BRAIN, d.kind());
        assertTrue(d.reason().contains("only --discard-my-data can resolve it"), d.reason());
    }

    @Test
    void parse_acceptsDrbdSpellingsAndPrintsThemBack() {
        for (String s : List.of("disconnect", "discard-younger-primary", "discard-older-primary",
                "discard-zero-changes", "discard-least-changes", "discard-node-alpha")) {
            assertEquals(s, ZeroPri.parse(s).toString());
        }
        for (String s : List.of("disconnect", "consensus", "discard-secondary")) {
            assertEquals(s, OnePri.parse(s).toString());
        }
        assertEquals("disconnect", TwoPri.parse("disconnect").toString());
        assertEquals("after-sb-0pri disconnect, after-sb-1pri disconnect, after-sb-2pri disconnect",
                AfterSbPolicy.DISCONNECT.toString());
    }

    @Test
    void parse_rejectsUnsupportedPoliciesNamingTheAllowedOnes() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> OnePri.parse("call-pri-lost-after-sb"));
        assertEquals("'call-pri-lost-after-sb' is not an after-sb-1pri policy (allowed: disconnect, consensus,"
                + " discard-secondary)", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> TwoPri.parse("violently-as0p"));
        assertTrue(e.getMessage().contains("(allowed: disconnect)"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ZeroPri.parse("discard-node-"));
        assertTrue(e.getMessage().contains("discard-node-NAME"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ZeroPri.parse("discard-secondary"));
        assertTrue(e.getMessage().contains("allowed: disconnect, discard-younger-primary, discard-older-primary,"
                + " discard-zero-changes, discard-least-changes, discard-node-NAME"), e.getMessage());
    }
}
