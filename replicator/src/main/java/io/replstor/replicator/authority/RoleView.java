package io.replstor.replicator.authority;

import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;

/**
 * What the role authority says of one resource at one moment: its term, its Primaries and its
 * in-sync set. Immutable; a newer view has a greater {@link #version()}.
 *
 * @param resource   the resource's name
 * @param term       grows by one with every role change (promotion, demotion, deposition); the fencing
 *                   token every data frame carries
 * @param primaries  the nodes that may write in this term (at most one unless two primaries are allowed)
 * @param inSync     the replicas known to hold every acknowledged write; only these may be promoted
 * @param version    orders views of this resource (the cluster store's applied log index; a counter
 *                   for a local authority)
 * @param lastChange what the last change was, for status and logs ("term 5: alpha promoted (...)")
 */
public record RoleView(String resource, long term, Set<String> primaries, Set<String> inSync, long version,
                       String lastChange) {

    public RoleView {
        Objects.requireNonNull(resource, "resource");
        primaries = Set.copyOf(primaries);
        inSync = Set.copyOf(inSync);
        if (term < 0) {
            throw new IllegalArgumentException("term " + term + " < 0");
        }
        lastChange = lastChange == null ? "" : lastChange;
    }

    public boolean isPrimary(String node) {
        return primaries.contains(node);
    }

    public boolean isInSync(String node) {
        return inSync.contains(node);
    }

    /** "alpha, beta" in name order, or "none". */
    public static String names(Set<String> nodes) {
        return nodes.isEmpty() ? "none" : String.join(", ", new TreeSet<>(nodes));
    }

    @Override
    public String toString() {
        return resource + " term " + term + " primaries [" + names(primaries) + "] in-sync [" + names(inSync) + "]";
    }
}
