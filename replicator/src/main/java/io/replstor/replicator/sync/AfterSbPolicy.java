package io.replstor.replicator.sync;

import java.util.Arrays;
import java.util.Locale;
import java.util.Objects;
import java.util.stream.Collectors;

/**
 * The after-split-brain policies, with DRBD's names: what to do when the generation identifiers
 * show a split brain with a common bitmap generation ({@link SyncRule#EQUAL_BITMAP}). The policy
 * applied depends on how many of the two nodes are Primary at connect time. The default for all
 * three is {@code disconnect}: a split brain is never resolved unless the operator opted in,
 * because every automatic resolution throws away one side's writes.
 *
 * <pre>
 * after-sb-0pri  disconnect | discard-younger-primary | discard-older-primary
 *                | discard-zero-changes | discard-least-changes | discard-node-NAME
 * after-sb-1pri  disconnect | consensus | discard-secondary
 * after-sb-2pri  disconnect
 * </pre>
 *
 * DRBD's {@code call-pri-lost-after-sb} and {@code violently-as0p} are not offered: they need a
 * Primary to be demoted or its data replaced under a running application.
 */
public record AfterSbPolicy(ZeroPri zeroPri, OnePri onePri, TwoPri twoPri) {

    /** The default: never resolve a split brain automatically. */
    public static final AfterSbPolicy DISCONNECT = new AfterSbPolicy(ZeroPri.DISCONNECT, OnePri.DISCONNECT,
            TwoPri.DISCONNECT);

    public AfterSbPolicy {
        Objects.requireNonNull(zeroPri, "zeroPri");
        Objects.requireNonNull(onePri, "onePri");
        Objects.requireNonNull(twoPri, "twoPri");
    }

    /** after-sb-0pri: neither node is Primary. */
    public record ZeroPri(Strategy strategy, String discardNode) {
        public static final ZeroPri DISCONNECT = new ZeroPri(Strategy.DISCONNECT, null);
        private static final String DISCARD_NODE_PREFIX = "discard-node-";

        public enum Strategy {
            DISCONNECT, DISCARD_YOUNGER_PRIMARY, DISCARD_OLDER_PRIMARY, DISCARD_ZERO_CHANGES,
            DISCARD_LEAST_CHANGES, DISCARD_NODE
        }

        public ZeroPri {
            Objects.requireNonNull(strategy, "strategy");
            if ((strategy == Strategy.DISCARD_NODE) != (discardNode != null)) {
                throw new IllegalArgumentException("discard-node needs a node name, and only discard-node takes one");
            }
            if (discardNode != null && discardNode.isEmpty()) {
                throw new IllegalArgumentException("discard-node needs a node name: discard-node-NAME");
            }
        }

        /** @throws IllegalArgumentException naming the value and the allowed ones */
        public static ZeroPri parse(String text) {
            if (text.startsWith(DISCARD_NODE_PREFIX)) {
                String node = text.substring(DISCARD_NODE_PREFIX.length());
                if (node.isEmpty()) {
                    throw new IllegalArgumentException("'" + text + "' names no node (write discard-node-NAME)");
                }
                return new ZeroPri(Strategy.DISCARD_NODE, node);
            }
            for (Strategy s : Strategy.values()) {
                if (s != Strategy.DISCARD_NODE && spelling(s).equals(text)) {
                    return new ZeroPri(s, null);
                }
            }
            throw new IllegalArgumentException("'" + text + "' is not an after-sb-0pri policy (allowed: "
                    + allowed() + ")");
        }

        public static String allowed() {
            return Arrays.stream(Strategy.values()).filter(s -> s != Strategy.DISCARD_NODE)
                    .map(ZeroPri::spelling).collect(Collectors.joining(", ")) + ", " + DISCARD_NODE_PREFIX + "NAME";
        }

        private static String spelling(Strategy s) {
            return s.name().toLowerCase(Locale.ROOT).replace('_', '-');
        }

        /** The configuration spelling, e.g. {@code discard-node-alpha}. */
        @Override
        public String toString() {
            return strategy == Strategy.DISCARD_NODE ? DISCARD_NODE_PREFIX + discardNode : spelling(strategy);
        }
    }

    /** after-sb-1pri: exactly one node is Primary. */
    public enum OnePri {
        DISCONNECT, CONSENSUS, DISCARD_SECONDARY;

        /** @throws IllegalArgumentException naming the value and the allowed ones */
        public static OnePri parse(String text) {
            for (OnePri p : values()) {
                if (p.toString().equals(text)) {
                    return p;
                }
            }
            throw new IllegalArgumentException("'" + text + "' is not an after-sb-1pri policy (allowed: "
                    + allowed() + ")");
        }

        public static String allowed() {
            return Arrays.stream(values()).map(OnePri::toString).collect(Collectors.joining(", "));
        }

        @Override
        public String toString() {
            return name().toLowerCase(Locale.ROOT).replace('_', '-');
        }
    }

    /** after-sb-2pri: both nodes are Primary. Only {@code disconnect}: two Primaries both have live writers. */
    public enum TwoPri {
        DISCONNECT;

        /** @throws IllegalArgumentException naming the value and the allowed ones */
        public static TwoPri parse(String text) {
            if (DISCONNECT.toString().equals(text)) {
                return DISCONNECT;
            }
            throw new IllegalArgumentException("'" + text + "' is not an after-sb-2pri policy (allowed: "
                    + allowed() + ")");
        }

        public static String allowed() {
            return DISCONNECT.toString();
        }

        @Override
        public String toString() {
            return "disconnect";
        }
    }

    /**
     * The outcome of applying the policies to a split brain.
     *
     * @param victim     the side whose changes are discarded (it becomes SyncTarget), or null if unresolved
     * @param resolution which policy decided, {@link SyncDecision.Resolution#NONE} if none did
     * @param why        what the policy looked at, for the decision's reason
     */
    record Verdict(SyncSide victim, SyncDecision.Resolution resolution, String why) {
    }

    /**
     * Applies the policy for the number of Primaries among {@code a} and {@code b}. Symmetric: the
     * verdict does not depend on the order of the two sides.
     *
     * @param resolveConflictsNodeId the node that yields when a policy ties
     */
    Verdict resolve(SyncSide first, SyncSide second, int resolveConflictsNodeId) {
        // node-id order, so that both nodes write the same sentence
        SyncSide a = first.nodeId() < second.nodeId() ? first : second;
        SyncSide b = a == first ? second : first;
        int primaries = (a.primary() ? 1 : 0) + (b.primary() ? 1 : 0);
        return switch (primaries) {
            case 0 -> {
                Verdict v = zeroPri(a, b, resolveConflictsNodeId);
                yield new Verdict(v.victim(), v.victim() == null ? SyncDecision.Resolution.NONE
                        : SyncDecision.Resolution.AFTER_SB_0PRI, "after-sb-0pri " + zeroPri + ": " + v.why());
            }
            case 1 -> onePri(a, b, resolveConflictsNodeId);
            default -> new Verdict(null, SyncDecision.Resolution.NONE,
                    "after-sb-2pri " + twoPri + ": both are Primary");
        };
    }

    private Verdict onePri(SyncSide a, SyncSide b, int resolveConflictsNodeId) {
        SyncSide secondary = a.primary() ? b : a;
        String head = "after-sb-1pri " + onePri + ": ";
        return switch (onePri) {
            case DISCONNECT -> unresolved(head + "no automatic resolution");
            case DISCARD_SECONDARY -> new Verdict(secondary, SyncDecision.Resolution.AFTER_SB_1PRI,
                    head + "discarding the changes of Secondary " + secondary.nodeName());
            case CONSENSUS -> {
                Verdict v = zeroPri(a, b, resolveConflictsNodeId);
                if (v.victim() != null && v.victim().nodeId() == secondary.nodeId()) {
                    yield new Verdict(secondary, SyncDecision.Resolution.AFTER_SB_1PRI,
                            head + "after-sb-0pri " + zeroPri + " agrees: " + v.why());
                }
                yield unresolved(head + "after-sb-0pri " + zeroPri + " does not discard Secondary "
                        + secondary.nodeName() + " (" + v.why() + ")");
            }
        };
    }

    /** The 0pri strategy on its own; the caller labels the resolution. */
    private Verdict zeroPri(SyncSide a, SyncSide b, int resolveConflictsNodeId) {
        return switch (zeroPri.strategy()) {
            case DISCONNECT -> unresolved("no automatic resolution");
            case DISCARD_YOUNGER_PRIMARY -> byPrimaryAge(a, b, true, resolveConflictsNodeId);
            case DISCARD_OLDER_PRIMARY -> byPrimaryAge(a, b, false, resolveConflictsNodeId);
            case DISCARD_ZERO_CHANGES -> zeroChanges(a, b, resolveConflictsNodeId);
            case DISCARD_LEAST_CHANGES -> leastChanges(a, b, resolveConflictsNodeId);
            case DISCARD_NODE -> discardNode(a, b);
        };
    }

    /**
     * The role bit of a bitmap UUID says the node was Primary when it lost the peer: that node is the
     * older Primary; the other was promoted later, while split.
     */
    private Verdict byPrimaryAge(SyncSide a, SyncSide b, boolean discardYounger, int resolveConflictsNodeId) {
        boolean aOlder = (a.ids().bitmap() & GenerationIds.UUID_PRIMARY) != 0;
        boolean bOlder = (b.ids().bitmap() & GenerationIds.UUID_PRIMARY) != 0;
        if (aOlder == bOlder) {
            Verdict v = leastChanges(a, b, resolveConflictsNodeId);
            return new Verdict(v.victim(), v.resolution(),
                    "cannot tell which Primary is younger, using discard-least-changes: " + v.why());
        }
        SyncSide older = aOlder ? a : b;
        SyncSide younger = aOlder ? b : a;
        SyncSide victim = discardYounger ? younger : older;
        return new Verdict(victim, SyncDecision.Resolution.NONE, older.nodeName() + " was Primary when the nodes split, "
                + younger.nodeName() + " was promoted later; discarding the changes of " + victim.nodeName());
    }

    private Verdict zeroChanges(SyncSide a, SyncSide b, int resolveConflictsNodeId) {
        boolean aChanged = a.dirtyBits() > 0;
        boolean bChanged = b.dirtyBits() > 0;
        if (aChanged && bChanged) {
            return unresolved("both changed data (" + a.nodeName() + " " + a.dirtyBits() + " blocks, "
                    + b.nodeName() + " " + b.dirtyBits() + " blocks)");
        }
        if (aChanged != bChanged) {
            SyncSide victim = aChanged ? b : a;
            return new Verdict(victim, SyncDecision.Resolution.NONE,
                    "only " + (aChanged ? a : b).nodeName() + " changed data; discarding " + victim.nodeName());
        }
        SyncSide victim = a.nodeId() == resolveConflictsNodeId ? a : b;
        return new Verdict(victim, SyncDecision.Resolution.NONE,
                "neither changed data; " + victim.nodeName() + " yields (resolve-conflicts)");
    }

    private Verdict leastChanges(SyncSide a, SyncSide b, int resolveConflictsNodeId) {
        if (a.dirtyBits() != b.dirtyBits()) {
            SyncSide victim = a.dirtyBits() < b.dirtyBits() ? a : b;
            return new Verdict(victim, SyncDecision.Resolution.NONE, a.nodeName() + " changed " + a.dirtyBits()
                    + " blocks, " + b.nodeName() + " " + b.dirtyBits() + "; discarding " + victim.nodeName());
        }
        SyncSide victim = a.nodeId() == resolveConflictsNodeId ? a : b;
        return new Verdict(victim, SyncDecision.Resolution.NONE, "both changed " + a.dirtyBits() + " blocks; "
                + victim.nodeName() + " yields (resolve-conflicts)");
    }

    private Verdict discardNode(SyncSide a, SyncSide b) {
        String node = zeroPri.discardNode();
        if (a.nodeName().equals(node) == b.nodeName().equals(node)) {
            return unresolved(node + " is not exactly one of " + a.nodeName() + " and " + b.nodeName());
        }
        SyncSide victim = a.nodeName().equals(node) ? a : b;
        return new Verdict(victim, SyncDecision.Resolution.NONE, "discarding the changes of " + node);
    }

    private static Verdict unresolved(String why) {
        return new Verdict(null, SyncDecision.Resolution.NONE, why);
    }

    /** The configuration spelling of the three policies. */
    @Override
    public String toString() {
        return "after-sb-0pri " + zeroPri + ", after-sb-1pri " + onePri + ", after-sb-2pri " + twoPri;
    }
}
