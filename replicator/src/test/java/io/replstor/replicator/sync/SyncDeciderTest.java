package io.replstor.replicator.sync;

import io.replstor.replicator.sync.SyncDecision.Kind;
import io.replstor.replicator.sync.SyncDecision.Resolution;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The decision table, one DRBD rule at a time, each checked from both sides. */
@Timeout(10)
class SyncDeciderTest {
    private static final long G = 0x1000_0000_0000_0010L;   // a common generation
    private static final long A1 = 0x2000_0000_0000_0020L;  // alpha's newer generation
    private static final long B1 = 0x3000_0000_0000_0030L;  // beta's newer generation
    private static final long OLD = 0x4000_0000_0000_0040L; // an older generation

    private static GenerationIds ids(long current, long bitmap, Long... history) {
        return new GenerationIds(current, bitmap, List.of(history), true, false);
    }

    private static SyncSide alpha(GenerationIds ids) {
        return SyncSide.of(0, "alpha", ids);
    }

    private static SyncSide beta(GenerationIds ids) {
        return SyncSide.of(1, "beta", ids);
    }

    /** Decides from alpha's side, checks that beta reaches the mirrored decision, returns alpha's. */
    private static SyncDecision decide(SyncSide alpha, SyncSide beta, AfterSbPolicy policy) {
        SyncDecision fromAlpha = SyncDecider.decide(alpha, beta, policy);
        SyncDecision fromBeta = SyncDecider.decide(beta, alpha, policy);
        assertEquals(fromAlpha.mirrored(), fromBeta, "beta must reach the mirror of alpha's decision");
        return fromAlpha;
    }

    private static SyncDecision decide(SyncSide alpha, SyncSide beta) {
        return decide(alpha, beta, AfterSbPolicy.DISCONNECT);
    }

    private static void assertDecision(Kind kind, SyncRule rule, Resolution resolution, SyncDecision d) {
        assertEquals(kind, d.kind(), d::toString);
        assertEquals(rule, d.rule(), d::toString);
        assertEquals(resolution, d.resolution(), d::toString);
    }

    @Test
    void rule10_bothJustCreated_noSync() {
        SyncDecision d = decide(alpha(GenerationIds.justCreated()), beta(GenerationIds.justCreated()));
        assertDecision(Kind.NO_SYNC, SyncRule.BOTH_JUST_CREATED, Resolution.NONE, d);
        assertEquals(10, d.rule().number());
    }

    @Test
    void rule10_zeroCurrentCountsAsJustCreated() {
        GenerationIds zero = new GenerationIds(0, 0, List.of(), false, false);
        assertDecision(Kind.NO_SYNC, SyncRule.BOTH_JUST_CREATED, Resolution.NONE,
                decide(alpha(zero), beta(GenerationIds.justCreated())));
    }

    @Test
    void rule20_myMetadataJustCreated_fullSyncTargetFromPeer() {
        SyncDecision d = decide(alpha(GenerationIds.justCreated()), beta(ids(G, 0)));
        assertDecision(Kind.FULL_SYNC_TARGET, SyncRule.JUST_CREATED, Resolution.NONE, d);
        assertEquals("alpha has fresh metadata: full sync from beta to alpha", d.reason());
    }

    @Test
    void rule30_peerJustCreated_fullSyncSource() {
        SyncDecision d = decide(alpha(ids(G, 0)), beta(GenerationIds.justCreated()));
        assertDecision(Kind.FULL_SYNC_SOURCE, SyncRule.PEER_JUST_CREATED, Resolution.NONE, d);
        assertEquals(30, d.rule().number());
    }

    @Test
    void rule40_equalCurrents_noSync() {
        SyncDecision d = decide(alpha(ids(G, 0)), beta(ids(G, 0)));
        assertDecision(Kind.NO_SYNC, SyncRule.EQUAL_CURRENT, Resolution.NONE, d);
        assertTrue(d.reason().contains("alpha and beta are at the same generation 1000000000000010"), d.reason());
    }

    @Test
    void rule40_rolebitIsMaskedInComparison() {
        SyncDecision d = decide(alpha(ids(G | GenerationIds.UUID_PRIMARY, 0)), beta(ids(G, 0)));
        assertDecision(Kind.NO_SYNC, SyncRule.EQUAL_CURRENT, Resolution.NONE, d);
    }

    @Test
    void rule40_crashedPrimaryIsBitmapSource() {
        GenerationIds crashed = new GenerationIds(G, 0, List.of(), true, true);
        SyncDecision d = decide(alpha(crashed), beta(ids(G, 0)));
        assertDecision(Kind.BITMAP_SYNC_SOURCE, SyncRule.EQUAL_CURRENT, Resolution.NONE, d);
        assertTrue(d.reason().contains("alpha crashed as Primary"), d.reason());
        assertDecision(Kind.BITMAP_SYNC_TARGET, SyncRule.EQUAL_CURRENT, Resolution.NONE,
                decide(alpha(ids(G, 0)), beta(crashed)));
    }

    @Test
    void rule40_bothCrashedPrimary_resolveConflictsNodeBecomesTarget() {
        GenerationIds crashed = new GenerationIds(G, 0, List.of(), true, true);
        // default: the higher node id (beta, 1) holds resolve-conflicts and yields
        SyncDecision d = decide(alpha(crashed), beta(crashed));
        assertDecision(Kind.BITMAP_SYNC_SOURCE, SyncRule.EQUAL_CURRENT, Resolution.NONE, d);
        assertTrue(d.reason().contains("beta yields (resolve-conflicts)"), d.reason());
        // explicit: alpha holds it
        SyncDecision explicit = SyncDecider.decide(alpha(crashed), beta(crashed), AfterSbPolicy.DISCONNECT, 0);
        assertEquals(Kind.BITMAP_SYNC_TARGET, explicit.kind());
        assertEquals(explicit.mirrored(), SyncDecider.decide(beta(crashed), alpha(crashed), AfterSbPolicy.DISCONNECT, 0));
    }

    @Test
    void rule50_peerBitmapIsMyCurrent_bitmapSyncTarget() {
        // beta moved on from G (its bitmap for alpha starts at G); alpha is still at G
        SyncDecision d = decide(alpha(ids(G, 0)), beta(ids(B1, G)));
        assertDecision(Kind.BITMAP_SYNC_TARGET, SyncRule.PEER_BITMAP_IS_MY_CURRENT, Resolution.NONE, d);
        assertEquals(50, d.rule().number());
        assertEquals("beta's bitmap for alpha starts at alpha's current UUID 1000000000000010: beta has newer data;"
                + " bitmap-based resync from beta to alpha", d.reason());
    }

    @Test
    void rule70_myBitmapIsPeerCurrent_bitmapSyncSource() {
        SyncDecision d = decide(alpha(ids(A1 | GenerationIds.UUID_PRIMARY, G | GenerationIds.UUID_PRIMARY)),
                beta(ids(G, 0)));
        assertDecision(Kind.BITMAP_SYNC_SOURCE, SyncRule.MY_BITMAP_IS_PEER_CURRENT, Resolution.NONE, d);
        assertEquals(70, d.rule().number());
    }

    @Test
    void rule60_myCurrentInPeerHistory_fullSyncTarget() {
        // beta went past G and lost its bitmap for alpha (it was resynced from a third node since)
        SyncDecision d = decide(alpha(ids(G, 0)), beta(ids(B1, 0, OLD, G)));
        assertDecision(Kind.FULL_SYNC_TARGET, SyncRule.MY_CURRENT_IN_PEER_HISTORY, Resolution.NONE, d);
        assertEquals(60, d.rule().number());
        assertTrue(d.reason().contains("full sync from beta to alpha"), d.reason());
    }

    @Test
    void rule80_peerCurrentInMyHistory_fullSyncSource() {
        SyncDecision d = decide(alpha(ids(A1, 0, G)), beta(ids(G, 0)));
        assertDecision(Kind.FULL_SYNC_SOURCE, SyncRule.PEER_CURRENT_IN_MY_HISTORY, Resolution.NONE, d);
        assertEquals(80, d.rule().number());
    }

    @Test
    void rules60and80_bothWays_isSplitBrainNotASync() {
        // each current is in the other's history: no real history does this; it must not pick a direction
        SyncDecision d = decide(alpha(ids(A1, 0, B1)), beta(ids(B1, 0, A1)));
        assertDecision(Kind.SPLIT_BRAIN, SyncRule.COMMON_HISTORY, Resolution.NONE, d);
    }

    @Test
    void rules50and70_bothWays_isNotASync() {
        SyncDecision d = decide(alpha(ids(A1, B1)), beta(ids(B1, A1)));
        assertFalse(d.kind().isSync(), d::toString);
        assertEquals(Kind.SPLIT_BRAIN, d.kind());
    }

    @Test
    void rule90_equalBitmapUuids_splitBrainAutoRecoverable() {
        SyncDecision d = decide(alpha(ids(A1, G)), beta(ids(B1, G | GenerationIds.UUID_PRIMARY)));
        assertDecision(Kind.SPLIT_BRAIN_AUTO_RECOVERABLE, SyncRule.EQUAL_BITMAP, Resolution.NONE, d);
        assertTrue(d.splitBrainDetected());
        assertEquals("split brain: alpha and beta both have changes since their common generation 1000000000000010"
                + " (current UUIDs alpha 2000000000000020, beta 3000000000000030); after-sb-0pri disconnect: no"
                + " automatic resolution. Disconnecting: choose the node whose changes will be lost and run"
                + " 'replctl connect --discard-my-data' on it", d.reason());
    }

    @Test
    void rule90_needsNonZeroBitmaps() {
        SyncDecision d = decide(alpha(ids(A1, 0)), beta(ids(B1, 0)));
        assertDecision(Kind.UNRELATED_DATA, SyncRule.UNRELATED, Resolution.NONE, d);
    }

    @Test
    void rule90_justCreatedInBothBitmapsIsNoCommonGeneration() {
        // two fresh nodes each forced Primary: both rotated the just-created value into their bitmap slot
        long justCreated = GenerationIds.UUID_JUST_CREATED;
        SyncDecision d = decide(alpha(ids(A1, justCreated)), beta(ids(B1, justCreated | GenerationIds.UUID_PRIMARY)));
        assertDecision(Kind.UNRELATED_DATA, SyncRule.UNRELATED, Resolution.NONE, d);
    }

    @Test
    void rule100_commonHistory_splitBrain() {
        SyncDecision d = decide(alpha(ids(A1, 0, G, OLD)), beta(ids(B1, 0, OLD)));
        assertDecision(Kind.SPLIT_BRAIN, SyncRule.COMMON_HISTORY, Resolution.NONE, d);
        assertEquals(100, d.rule().number());
        assertTrue(d.reason().contains("common ancestor 4000000000000040"), d.reason());
        assertTrue(d.reason().contains("--discard-my-data"), d.reason());
    }

    @Test
    void rule100_bitmapOfOneSideInHistoryOfTheOther_splitBrain() {
        SyncDecision d = decide(alpha(ids(A1, G)), beta(ids(B1, 0, G)));
        assertDecision(Kind.SPLIT_BRAIN, SyncRule.COMMON_HISTORY, Resolution.NONE, d);
    }

    @Test
    void nothingInCommon_unrelatedData() {
        SyncDecision d = decide(alpha(ids(A1, G)), beta(ids(B1, OLD, 0x5550L)));
        assertDecision(Kind.UNRELATED_DATA, SyncRule.UNRELATED, Resolution.NONE, d);
        assertFalse(d.kind().connects());
        assertTrue(d.reason().startsWith("unrelated data: alpha and beta have no generation in common"), d.reason());
    }

    @Test
    void unrelatedData_isNotResolvedByDiscardMyData() {
        SyncDecision d = decide(alpha(ids(A1, 0)).withDiscardMyData(true), beta(ids(B1, 0)));
        assertEquals(Kind.UNRELATED_DATA, d.kind());
    }

    @Test
    void discardMyData_turnsAutoRecoverableSplitBrainIntoBitmapSyncWithThatSideAsTarget() {
        SyncDecision d = decide(alpha(ids(A1, G)), beta(ids(B1, G)).withDiscardMyData(true));
        assertDecision(Kind.BITMAP_SYNC_SOURCE, SyncRule.EQUAL_BITMAP, Resolution.DISCARD_MY_DATA, d);
        assertTrue(d.splitBrainDetected());
        assertTrue(d.reason().endsWith("resolved by --discard-my-data on beta: bitmap-based resync from alpha to beta"),
                d.reason());
    }

    @Test
    void discardMyData_turnsSplitBrainWithoutBitmapsIntoFullSync() {
        SyncDecision d = decide(alpha(ids(A1, 0, G)).withDiscardMyData(true), beta(ids(B1, 0, G)));
        assertDecision(Kind.FULL_SYNC_TARGET, SyncRule.COMMON_HISTORY, Resolution.DISCARD_MY_DATA, d);
    }

    @Test
    void discardMyData_winsOverAfterSbPolicy() {
        AfterSbPolicy policy = new AfterSbPolicy(AfterSbPolicy.ZeroPri.parse("discard-node-alpha"),
                AfterSbPolicy.OnePri.DISCONNECT, AfterSbPolicy.TwoPri.DISCONNECT);
        SyncDecision d = decide(alpha(ids(A1, G)), beta(ids(B1, G)).withDiscardMyData(true), policy);
        assertDecision(Kind.BITMAP_SYNC_SOURCE, SyncRule.EQUAL_BITMAP, Resolution.DISCARD_MY_DATA, d);
    }

    @Test
    void discardMyDataOnBothSides_staysSplitBrain() {
        SyncDecision d = decide(alpha(ids(A1, G)).withDiscardMyData(true), beta(ids(B1, G)).withDiscardMyData(true));
        assertDecision(Kind.SPLIT_BRAIN_AUTO_RECOVERABLE, SyncRule.EQUAL_BITMAP, Resolution.NONE, d);
        assertTrue(d.reason().contains("--discard-my-data was given on both alpha and beta"), d.reason());
    }

    @Test
    void discardMyData_isIgnoredWithoutSplitBrain() {
        SyncDecision d = decide(alpha(ids(G, 0)).withDiscardMyData(true), beta(ids(B1, G)));
        assertDecision(Kind.BITMAP_SYNC_TARGET, SyncRule.PEER_BITMAP_IS_MY_CURRENT, Resolution.NONE, d);
        SyncDecision ahead = decide(alpha(ids(A1, G)).withDiscardMyData(true), beta(ids(G, 0)));
        assertEquals(Kind.BITMAP_SYNC_SOURCE, ahead.kind(), "discard-my-data never reverses a clear direction");
    }

    @Test
    void diskStates_inconsistentSideAtSameGenerationBecomesBitmapTarget() {
        GenerationIds inconsistent = new GenerationIds(G, 0, List.of(), false, false);
        SyncDecision d = decide(alpha(ids(G, 0)), beta(inconsistent));
        assertDecision(Kind.BITMAP_SYNC_SOURCE, SyncRule.EQUAL_CURRENT, Resolution.DISK_STATES, d);
        assertTrue(d.reason().endsWith("but beta is Inconsistent and alpha is not: bitmap-based resync from alpha to beta"),
                d.reason());
    }

    @Test
    void diskStates_inconsistentSideThatLooksNewerBecomesFullTarget() {
        GenerationIds inconsistentAhead = new GenerationIds(B1, G, List.of(), false, false);
        SyncDecision d = decide(alpha(ids(G, 0)), beta(inconsistentAhead));
        assertDecision(Kind.FULL_SYNC_SOURCE, SyncRule.PEER_BITMAP_IS_MY_CURRENT, Resolution.DISK_STATES, d);
    }

    @Test
    void diskStates_inconsistentTargetKeepsTheComparisonsDecision() {
        GenerationIds inconsistentBehind = new GenerationIds(G, 0, List.of(), false, false);
        SyncDecision d = decide(alpha(ids(A1, G)), beta(inconsistentBehind));
        assertDecision(Kind.BITMAP_SYNC_SOURCE, SyncRule.MY_BITMAP_IS_PEER_CURRENT, Resolution.NONE, d);
    }

    @Test
    void diskStates_inconsistentSideOfSplitBrainBecomesFullTarget() {
        GenerationIds inconsistent = new GenerationIds(B1, G, List.of(), false, false);
        SyncDecision d = decide(alpha(ids(A1, G)), beta(inconsistent));
        assertDecision(Kind.FULL_SYNC_SOURCE, SyncRule.EQUAL_BITMAP, Resolution.DISK_STATES, d);
        assertTrue(d.splitBrainDetected());
    }

    @Test
    void diskStates_bothInconsistent_noConsistentSource() {
        GenerationIds inconsistent = new GenerationIds(G, 0, List.of(), false, false);
        SyncDecision d = decide(alpha(inconsistent), beta(GenerationIds.justCreated()));
        assertDecision(Kind.NO_CONSISTENT_SOURCE, SyncRule.PEER_JUST_CREATED, Resolution.DISK_STATES, d);
        assertFalse(d.kind().connects());
        assertTrue(d.reason().contains("both alpha and beta are Inconsistent"), d.reason());
    }

    @Test
    void reasonIsTheSameSentenceOnBothSides() {
        SyncDecision fromAlpha = SyncDecider.decide(alpha(ids(A1, G)), beta(ids(G, 0)));
        SyncDecision fromBeta = SyncDecider.decide(beta(ids(G, 0)), alpha(ids(A1, G)));
        assertEquals(fromAlpha.reason(), fromBeta.reason());
        assertEquals(SyncRule.MY_BITMAP_IS_PEER_CURRENT, fromAlpha.rule());
        assertEquals(SyncRule.PEER_BITMAP_IS_MY_CURRENT, fromBeta.rule());
    }

    @Test
    void toStringNamesKindRuleAndReason() {
        SyncDecision d = SyncDecider.decide(alpha(ids(G, 0)), beta(ids(B1, G)));
        assertTrue(d.toString().startsWith("BITMAP_SYNC_TARGET by rule 50 (peer's bitmap UUID is my current UUID): "),
                d.toString());
    }

    @Test
    void sameNodeIdOnBothSides_isRejected() {
        assertThrows(IllegalArgumentException.class,
                () -> SyncDecider.decide(alpha(ids(G, 0)), SyncSide.of(0, "alpha2", ids(G, 0))));
        assertThrows(IllegalArgumentException.class,
                () -> SyncDecider.decide(alpha(ids(G, 0)), beta(ids(G, 0)), AfterSbPolicy.DISCONNECT, 7));
    }
}
