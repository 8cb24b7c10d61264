package io.replstor.replicator.sync;

import io.replstor.replicator.sync.SyncDecision.Kind;
import io.replstor.replicator.sync.SyncDecision.Resolution;

import java.util.ArrayList;
import java.util.List;

import static io.replstor.replicator.sync.GenerationIds.format;
import static io.replstor.replicator.sync.GenerationIds.masked;

/**
 * The connect-time sync decision: from both sides' generation identifiers, whether the two are in
 * sync, which one resyncs from the other and how (bitmap or full), or whether they split-brained
 * or hold unrelated data. A pure function; each node runs it with itself as {@code me} and reaches
 * the mirrored answer of its peer.
 *
 * <p>Three steps, in this order:
 * <ol>
 *   <li><b>UUID comparison</b>, first matching rule wins (DRBD's rule numbers; all UUIDs compared
 *       without their role bit; 0 and the just-created value 4 never match anything outside rules
 *       10-30, as they name no generation):
 *     <pre>
 *      10  both current UUIDs just created (0 or 4)           no sync
 *      20  my current just created                            full sync, I am target
 *      30  the peer's current just created                    full sync, I am source
 *      40  equal current UUIDs                                no sync; but a crashed Primary is
 *                                                             bitmap source (both crashed: the
 *                                                             resolve-conflicts node is target)
 *      50  peer's bitmap UUID == my current (and not rule 70) bitmap sync, I am target
 *      70  my bitmap UUID == peer's current (and not rule 50) bitmap sync, I am source
 *      60  my current in peer's history (and not rule 80)     full sync, I am target
 *      80  peer's current in my history (and not rule 60)     full sync, I am source
 *      90  equal bitmap UUIDs (not 0, not just-created)       split brain, auto-recoverable
 *     100  any UUID of one side among the other's             split brain
 *          (current, bitmap, history)
 *     100  nothing in common                                  unrelated data
 *     </pre>
 *     Each pair of mirrored rules is checked as a pair and fires only one way, so the result does
 *     not depend on which side decides, even for identifiers no real history can produce.</li>
 *   <li><b>Disk states.</b> If exactly one side is Inconsistent, it becomes SyncTarget: unchanged if
 *       the comparison already made it target; bitmap-based if the comparison found them in sync
 *       (an Inconsistent disk at the same generation has its missing blocks in the bitmaps, as
 *       {@code invalidate} sets them); full otherwise. If both are Inconsistent, a resync has no
 *       usable source: {@link Kind#NO_CONSISTENT_SOURCE}.</li>
 *   <li><b>Split brain.</b> If both sides know data terms and they differ, the side with the older
 *       data term is the target (bitmap-based after rule 90, full after rule 100): with a cluster store
 *       a Primary completes a write only when every in-sync replica holds it, so the writes a deposed
 *       Primary made after it lost its peers were never acknowledged, and the newer term holds every
 *       acknowledged write. Otherwise, {@code --discard-my-data} on exactly one side makes that side the target
 *       (bitmap-based after rule 90, full after rule 100). Otherwise, after rule 90 only, the
 *       {@link AfterSbPolicy} for the number of Primaries may pick a side to discard (bitmap-based).
 *       Anything else stays a split brain and the nodes disconnect.</li>
 * </ol>
 *
 * <p>The resolve-conflicts node breaks ties (both crashed Primary; policy ties). Both sides must
 * agree on it; by default it is the node with the higher node id.
 */
public final class SyncDecider {

    private SyncDecider() {
    }

    /** Decides with the default policies ({@code disconnect}: split brain is never resolved by itself). */
    public static SyncDecision decide(SyncSide me, SyncSide peer) {
        return decide(me, peer, AfterSbPolicy.DISCONNECT);
    }

    /** Decides with the node of higher node id holding resolve-conflicts. */
    public static SyncDecision decide(SyncSide me, SyncSide peer, AfterSbPolicy policy) {
        return decide(me, peer, policy, Math.max(me.nodeId(), peer.nodeId()));
    }

    /**
     * @param resolveConflictsNodeId the node id of the side that yields on a tie; one of the two
     * @throws IllegalArgumentException if both sides have the same node id or resolve-conflicts
     *                                  names neither
     */
    public static SyncDecision decide(SyncSide me, SyncSide peer, AfterSbPolicy policy, int resolveConflictsNodeId) {
        if (me.nodeId() == peer.nodeId()) {
            throw new IllegalArgumentException("both sides have node id " + me.nodeId());
        }
        if (resolveConflictsNodeId != me.nodeId() && resolveConflictsNodeId != peer.nodeId()) {
            throw new IllegalArgumentException("resolve-conflicts node id " + resolveConflictsNodeId
                    + " is neither " + me.nodeId() + " nor " + peer.nodeId());
        }
        SyncDecision compared = compareUuids(me, peer, resolveConflictsNodeId);
        if (compared.kind() == Kind.UNRELATED_DATA) {
            return compared;
        }
        SyncDecision checked = applyDiskStates(compared, me, peer);
        if (checked.kind() == Kind.SPLIT_BRAIN_AUTO_RECOVERABLE || checked.kind() == Kind.SPLIT_BRAIN) {
            return resolveSplitBrain(checked, me, peer, policy, resolveConflictsNodeId);
        }
        return checked;
    }

    // ---- step 1: the UUID comparison ----

    private static SyncDecision compareUuids(SyncSide me, SyncSide peer, int resolveConflictsNodeId) {
        GenerationIds m = me.ids();
        GenerationIds p = peer.ids();
        if (m.isJustCreated() && p.isJustCreated()) {
            return decision(Kind.NO_SYNC, SyncRule.BOTH_JUST_CREATED, "both " + names(me, peer)
                    + " have fresh metadata; nothing to synchronize");
        }
        if (m.isJustCreated() || p.isJustCreated()) {
            SyncSide fresh = m.isJustCreated() ? me : peer;
            SyncSide other = fresh == me ? peer : me;
            return towards(me, fresh, false, fresh == me ? SyncRule.JUST_CREATED : SyncRule.PEER_JUST_CREATED,
                    fresh.nodeName() + " has fresh metadata: full sync from " + other.nodeName() + " to "
                            + fresh.nodeName());
        }
        long mc = masked(m.current());
        long pc = masked(p.current());
        if (mc == pc) {
            return equalCurrent(me, peer, resolveConflictsNodeId);
        }
        boolean peerBitmapIsMyCurrent = masked(p.bitmap()) == mc;
        boolean myBitmapIsPeerCurrent = masked(m.bitmap()) == pc;
        if (peerBitmapIsMyCurrent != myBitmapIsPeerCurrent) {
            SyncSide behind = peerBitmapIsMyCurrent ? me : peer;
            SyncSide ahead = behind == me ? peer : me;
            return towards(me, behind, true,
                    behind == me ? SyncRule.PEER_BITMAP_IS_MY_CURRENT : SyncRule.MY_BITMAP_IS_PEER_CURRENT,
                    ahead.nodeName() + "'s bitmap for " + behind.nodeName() + " starts at " + behind.nodeName()
                            + "'s current UUID " + format(behind.ids().current()) + ": " + ahead.nodeName()
                            + " has newer data; bitmap-based resync from " + ahead.nodeName() + " to "
                            + behind.nodeName());
        }
        boolean myCurrentInPeerHistory = p.historyContains(mc);
        boolean peerCurrentInMyHistory = m.historyContains(pc);
        if (myCurrentInPeerHistory != peerCurrentInMyHistory) {
            SyncSide behind = myCurrentInPeerHistory ? me : peer;
            SyncSide ahead = behind == me ? peer : me;
            return towards(me, behind, false,
                    behind == me ? SyncRule.MY_CURRENT_IN_PEER_HISTORY : SyncRule.PEER_CURRENT_IN_MY_HISTORY,
                    behind.nodeName() + "'s current UUID " + format(behind.ids().current()) + " is in "
                            + ahead.nodeName() + "'s history, with no bitmap since: " + ahead.nodeName()
                            + " has newer data; full sync from " + ahead.nodeName() + " to " + behind.nodeName());
        }
        if (GenerationIds.isGeneration(m.bitmap()) && masked(m.bitmap()) == masked(p.bitmap())) {
            return decision(Kind.SPLIT_BRAIN_AUTO_RECOVERABLE, SyncRule.EQUAL_BITMAP, "split brain: "
                    + names(me, peer) + " both have changes since their common generation " + format(masked(m.bitmap()))
                    + " (current UUIDs " + currents(me, peer) + ")");
        }
        Long common = commonAncestor(m, p);
        if (common != null) {
            return decision(Kind.SPLIT_BRAIN, SyncRule.COMMON_HISTORY, "split brain: " + names(me, peer)
                    + " both have changes since their common ancestor " + format(common)
                    + " and no bitmap reaches back to it (current UUIDs " + currents(me, peer) + ")");
        }
        return decision(Kind.UNRELATED_DATA, SyncRule.UNRELATED, "unrelated data: " + names(me, peer)
                + " have no generation in common (current UUIDs " + currents(me, peer)
                + "); refusing to connect. Check that both use the right disk; to replace one side's data, "
                + "recreate its metadata (create-md) so that it gets a full sync");
    }

    private static SyncDecision equalCurrent(SyncSide me, SyncSide peer, int resolveConflictsNodeId) {
        String same = names(me, peer) + " are at the same generation " + format(masked(me.ids().current()));
        boolean meCrashed = me.ids().crashedPrimary();
        boolean peerCrashed = peer.ids().crashedPrimary();
        if (!meCrashed && !peerCrashed) {
            return decision(Kind.NO_SYNC, SyncRule.EQUAL_CURRENT, same);
        }
        SyncSide target;
        String why;
        if (meCrashed && peerCrashed) {
            target = me.nodeId() == resolveConflictsNodeId ? me : peer;
            why = "both crashed as Primary and " + target.nodeName() + " yields (resolve-conflicts)";
        } else {
            SyncSide crashed = meCrashed ? me : peer;
            target = crashed == me ? peer : me;
            why = crashed.nodeName() + " crashed as Primary";
        }
        SyncSide source = target == me ? peer : me;
        return towards(me, target, true, SyncRule.EQUAL_CURRENT, same + ", but " + why
                + ": its activity log's hot extents are resynced from " + source.nodeName() + " to "
                + target.nodeName());
    }

    /**
     * The common UUID of both sides' identifiers that is newest on both (smallest sum of positions
     * in current, bitmap, history order); ties go to the smaller value so both sides name the same one.
     */
    private static Long commonAncestor(GenerationIds a, GenerationIds b) {
        List<Long> la = lineage(a);
        List<Long> lb = lineage(b);
        Long best = null;
        int bestDistance = Integer.MAX_VALUE;
        for (int i = 0; i < la.size(); i++) {
            int j = lb.indexOf(la.get(i));
            if (j < 0) {
                continue;
            }
            long uuid = la.get(i);
            int distance = i + j;
            if (distance < bestDistance || (distance == bestDistance && Long.compareUnsigned(uuid, best) < 0)) {
                best = uuid;
                bestDistance = distance;
            }
        }
        return best;
    }

    /** Current, bitmap and history UUIDs, masked, that name a generation. */
    private static List<Long> lineage(GenerationIds ids) {
        List<Long> out = new ArrayList<>(ids.history().size() + 2);
        addUsed(out, ids.current());
        addUsed(out, ids.bitmap());
        for (long h : ids.history()) {
            addUsed(out, h);
        }
        return out;
    }

    private static void addUsed(List<Long> out, long uuid) {
        if (GenerationIds.isGeneration(uuid)) {
            out.add(masked(uuid));
        }
    }

    // ---- step 2: disk states ----

    private static SyncDecision applyDiskStates(SyncDecision d, SyncSide me, SyncSide peer) {
        boolean meInconsistent = !me.ids().consistent();
        boolean peerInconsistent = !peer.ids().consistent();
        if (!meInconsistent && !peerInconsistent) {
            return d;
        }
        if (meInconsistent && peerInconsistent) {
            if (!d.kind().isSync()) {
                return d;
            }
            return new SyncDecision(Kind.NO_CONSISTENT_SOURCE, d.rule(), Resolution.DISK_STATES, d.reason()
                    + "; but both " + names(me, peer) + " are Inconsistent, so neither can be the sync source;"
                    + " disconnecting until a node with good data connects (or one is made Primary with --force)");
        }
        SyncSide target = meInconsistent ? me : peer;
        SyncSide source = target == me ? peer : me;
        boolean alreadyTarget = target == me ? d.kind().isTarget() : d.kind().isSource();
        if (alreadyTarget) {
            return d;
        }
        boolean bitmap = d.kind() == Kind.NO_SYNC;
        String how = bitmap ? "bitmap-based resync" : "full sync";
        Kind kind = target == me ? (bitmap ? Kind.BITMAP_SYNC_TARGET : Kind.FULL_SYNC_TARGET)
                : (bitmap ? Kind.BITMAP_SYNC_SOURCE : Kind.FULL_SYNC_SOURCE);
        return new SyncDecision(kind, d.rule(), Resolution.DISK_STATES, d.reason() + "; but "
                + target.nodeName() + " is Inconsistent and " + source.nodeName() + " is not: " + how + " from "
                + source.nodeName() + " to " + target.nodeName());
    }

    // ---- step 3: split brain ----

    private static SyncDecision resolveSplitBrain(SyncDecision d, SyncSide me, SyncSide peer, AfterSbPolicy policy,
                                                  int resolveConflictsNodeId) {
        boolean bitmap = d.kind() == Kind.SPLIT_BRAIN_AUTO_RECOVERABLE;
        String how = bitmap ? "bitmap-based resync" : "full sync";
        if (me.dataTerm() != peer.dataTerm()) {
            SyncSide victim = me.dataTerm() < peer.dataTerm() ? me : peer;
            SyncSide survivor = victim == me ? peer : me;
            return resolved(d, me, victim, bitmap, Resolution.TERMS, "resolved by the cluster store's terms: "
                    + victim.nodeName() + "'s newest data is of term " + victim.dataTerm() + ", older than "
                    + survivor.nodeName() + "'s term " + survivor.dataTerm() + " (its writes since were never"
                    + " acknowledged): " + how + " from " + survivor.nodeName() + " to " + victim.nodeName());
        }
        if (me.discardMyData() != peer.discardMyData()) {
            SyncSide victim = me.discardMyData() ? me : peer;
            SyncSide survivor = victim == me ? peer : me;
            return resolved(d, me, victim, bitmap, Resolution.DISCARD_MY_DATA, "resolved by --discard-my-data on "
                    + victim.nodeName() + ": " + how + " from " + survivor.nodeName() + " to " + victim.nodeName());
        }
        String unresolvedWhy;
        if (me.discardMyData()) {
            unresolvedWhy = "--discard-my-data was given on both " + names(me, peer);
        } else if (bitmap) {
            AfterSbPolicy.Verdict v = policy.resolve(me, peer, resolveConflictsNodeId);
            if (v.victim() != null) {
                SyncSide survivor = v.victim().nodeId() == me.nodeId() ? peer : me;
                return resolved(d, me, v.victim(), true, v.resolution(), v.why() + ": " + how + " from "
                        + survivor.nodeName() + " to " + v.victim().nodeName());
            }
            unresolvedWhy = v.why();
        } else {
            unresolvedWhy = "no bitmap covers the changes, so only --discard-my-data can resolve it";
        }
        return new SyncDecision(d.kind(), d.rule(), Resolution.NONE, d.reason() + "; " + unresolvedWhy
                + ". Disconnecting: choose the node whose changes will be lost and run"
                + " 'replctl connect --discard-my-data' on it");
    }

    private static SyncDecision resolved(SyncDecision d, SyncSide me, SyncSide victim, boolean bitmap,
                                         Resolution resolution, String why) {
        Kind kind = victim.nodeId() == me.nodeId() ? (bitmap ? Kind.BITMAP_SYNC_TARGET : Kind.FULL_SYNC_TARGET)
                : (bitmap ? Kind.BITMAP_SYNC_SOURCE : Kind.FULL_SYNC_SOURCE);
        return new SyncDecision(kind, d.rule(), resolution, d.reason() + "; " + why);
    }

    // ---- helpers ----

    /** A resync towards {@code target}, from the deciding side {@code me}'s point of view. */
    private static SyncDecision towards(SyncSide me, SyncSide target, boolean bitmap, SyncRule rule, String reason) {
        Kind kind = target.nodeId() == me.nodeId() ? (bitmap ? Kind.BITMAP_SYNC_TARGET : Kind.FULL_SYNC_TARGET)
                : (bitmap ? Kind.BITMAP_SYNC_SOURCE : Kind.FULL_SYNC_SOURCE);
        return decision(kind, rule, reason);
    }

    private static SyncDecision decision(Kind kind, SyncRule rule, String reason) {
        return new SyncDecision(kind, rule, Resolution.NONE, reason);
    }

    /** The two names in node-id order, so both sides write the same sentence. */
    private static String names(SyncSide a, SyncSide b) {
        return a.nodeId() < b.nodeId() ? a.nodeName() + " and " + b.nodeName() : b.nodeName() + " and " + a.nodeName();
    }

    private static String currents(SyncSide a, SyncSide b) {
        SyncSide first = a.nodeId() < b.nodeId() ? a : b;
        SyncSide second = first == a ? b : a;
        return first.nodeName() + " " + format(first.ids().current()) + ", " + second.nodeName() + " "
                + format(second.ids().current());
    }
}
