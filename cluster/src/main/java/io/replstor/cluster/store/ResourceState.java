package io.replstor.cluster.store;

import io.replstor.replicator.authority.RoleView;

import java.util.Collection;
import java.util.Collections;
import java.util.Objects;
import java.util.SortedSet;
import java.util.TreeSet;

/**
 * The replicated state of one resource (part of {@link StoreState}; JSON in snapshots and replies).
 *
 * @param name       the resource
 * @param term       +1 on every role change
 * @param primaries  who may write in this term
 * @param inSync     the replicas that hold every acknowledged write
 * @param lastChange the sentence of the last change ("term 5: alpha promoted (...)")
 * @param forced     the last forced promotion, or null
 * @param version    the log index of the entry that last changed this resource (0: never changed)
 */
record ResourceState(String name, long term, SortedSet<String> primaries, SortedSet<String> inSync, String lastChange,
                     ForcedPromotion forced, long version) {

    /** A promotion of a node outside the in-sync set, kept so that status shows who forced what. */
    record ForcedPromotion(String node, long term, String reason) {
        ForcedPromotion {
            Objects.requireNonNull(node, "node");
            reason = reason == null ? "" : reason;
        }
    }

    ResourceState {
        Objects.requireNonNull(name, "name");
        primaries = sorted(primaries);
        inSync = sorted(inSync);
        lastChange = lastChange == null ? "" : lastChange;
        if (term < 0) {
            throw new IllegalArgumentException("term " + term + " < 0");
        }
    }

    /** Before any change: term 0, no Primary, every holder in sync. */
    static ResourceState initial(String name, Collection<String> holders) {
        return new ResourceState(name, 0, Collections.emptySortedSet(), new TreeSet<>(holders), "", null, 0);
    }

    RoleView toView() {
        return new RoleView(name, term, primaries, inSync, version, lastChange);
    }

    ResourceState withRoles(long newTerm, Collection<String> newPrimaries, Collection<String> newInSync,
                            String change, ForcedPromotion newForced, long index) {
        return new ResourceState(name, newTerm, new TreeSet<>(newPrimaries), new TreeSet<>(newInSync), change, newForced,
                index);
    }

    /** "[alpha, beta]", "[]". */
    static String list(Collection<String> nodes) {
        return "[" + String.join(", ", new TreeSet<>(nodes)) + "]";
    }

    private static SortedSet<String> sorted(Collection<String> c) {
        return Collections.unmodifiableSortedSet(c == null ? new TreeSet<>() : new TreeSet<>(c));
    }
}
