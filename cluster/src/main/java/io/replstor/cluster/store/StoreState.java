package io.replstor.cluster.store;

import io.replstor.cluster.store.StoreCommand.AddInSync;
import io.replstor.cluster.store.StoreCommand.Demote;
import io.replstor.cluster.store.StoreCommand.Promote;
import io.replstor.cluster.store.StoreCommand.RemoveInSync;
import io.replstor.cluster.store.StoreCommand.Renew;
import io.replstor.cluster.store.ResourceState.ForcedPromotion;

import java.util.Collections;
import java.util.Set;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * The cluster store's replicated state: per resource its {@link ResourceState}, per node the sequence
 * number of its latest applied lease renewal. Immutable: {@link #apply} returns the next state, so a
 * reader (a query, a snapshot, the leader's lease check) always sees one whole applied state.
 *
 * <p>The rules, applied in log order by every member alike (they read nothing but the state and the
 * command; no clock, no local view):
 * <ul>
 * <li>Promote: a node that is already Primary succeeds in the same term. Every other current Primary
 *     must be named in {@code deposed} with exactly its current lease sequence number (the leader saw
 *     that renewal expire; a renewal applied since means it is alive), else REFUSED. Without
 *     {@code force} the node must be in the in-sync set, else REFUSED. Success: term + 1, the node is
 *     the only Primary; with force, the in-sync set is the node alone and the promotion is recorded.
 *     Deposed Primaries stay in the in-sync set: they hold every acknowledged write until the new
 *     Primary writes without them and removes them.</li>
 * <li>Demote: a Primary leaves the Primaries in a new term; anyone else: nothing changes.</li>
 * <li>RemoveInSync / AddInSync: only the Primary of the current term (else STALE_TERM: the caller
 *     was deposed); idempotent. AddInSync also from a member of the in-sync set while the current
 *     term has no Primary: that member brought the peer up to date by a resync, and without a Primary
 *     no write is acknowledged, so the peer holds every acknowledged write (else a node resynced after
 *     the last Primary demoted could not be promoted until another node was).</li>
 * <li>Renew: records the node's sequence number.</li>
 * </ul>
 *
 * @param resources by name
 * @param leaseSeqs by node: the sequence number of the latest renewal applied (absent: none yet, read as 0)
 */
record StoreState(SortedMap<String, ResourceState> resources, SortedMap<String, Long> leaseSeqs) {

    /** The outcome of one command: the next state, the reply, and the resource it changed (or null). */
    record Outcome(StoreState state, StoreReply reply, ResourceState changed) {
    }

    StoreState {
        resources = Collections.unmodifiableSortedMap(new TreeMap<>(resources));
        leaseSeqs = Collections.unmodifiableSortedMap(new TreeMap<>(leaseSeqs));
    }

    /** Every resource of the file at term 0 with its holders in sync; no renewals. */
    static StoreState initial(StoreMembers members) {
        SortedMap<String, ResourceState> rs = new TreeMap<>();
        members.holders().forEach((r, holders) -> rs.put(r, ResourceState.initial(r, holders)));
        return new StoreState(rs, new TreeMap<>());
    }

    /** A resource of the file that a snapshot from before it was added does not know yet starts at term 0. */
    StoreState withResourcesOf(StoreMembers members) {
        SortedMap<String, ResourceState> rs = new TreeMap<>(resources);
        members.holders().forEach((r, holders) -> rs.putIfAbsent(r, ResourceState.initial(r, holders)));
        return new StoreState(rs, leaseSeqs);
    }

    long leaseSeq(String node) {
        return leaseSeqs.getOrDefault(node, 0L);
    }

    Outcome apply(StoreCommand command, long index, StoreMembers members) {
        if (command instanceof Renew r) {
            return renew(r, members);
        }
        String resource = resourceOf(command);
        ResourceState cur = resources.get(resource);
        if (cur == null) {
            return unchanged(StoreReply.refused("no resource '" + resource + "' in cluster '" + members.cluster()
                    + "' (resources: " + String.join(", ", resources.keySet()) + ")"));
        }
        Set<String> holders = members.holders().getOrDefault(resource, Set.of());
        if (command instanceof Promote p) {
            return promote(cur, p, index, holders);
        } else if (command instanceof Demote d) {
            return demote(cur, d, index);
        } else if (command instanceof RemoveInSync r) {
            return removeInSync(cur, r, index);
        } else if (command instanceof AddInSync a) {
            return addInSync(cur, a, index, holders);
        }
        throw new IllegalArgumentException("unknown command " + command);
    }

    private static String resourceOf(StoreCommand c) {
        if (c instanceof Promote p) {
            return p.resource();
        } else if (c instanceof Demote d) {
            return d.resource();
        } else if (c instanceof RemoveInSync r) {
            return r.resource();
        } else if (c instanceof AddInSync a) {
            return a.resource();
        }
        throw new IllegalArgumentException("command " + c + " names no resource");
    }

    private Outcome renew(Renew r, StoreMembers members) {
        if (!members.isMember(r.node())) {
            return unchanged(StoreReply.refused("no node '" + r.node() + "' in cluster '" + members.cluster() + "'"));
        }
        SortedMap<String, Long> seqs = new TreeMap<>(leaseSeqs);
        seqs.put(r.node(), r.seq());
        return new Outcome(new StoreState(resources, seqs), StoreReply.done(), null);
    }

    private Outcome promote(ResourceState cur, Promote p, long index, Set<String> holders) {
        String node = p.node();
        if (!holders.contains(node)) {
            return unchanged(StoreReply.refused(node + " holds no disk of " + cur.name() + " (holders: "
                    + ResourceState.list(holders) + ")"));
        }
        if (cur.primaries().contains(node)) {
            return unchanged(StoreReply.ok(cur));
        }
        for (String other : cur.primaries()) {
            Long seen = p.deposed().get(other);
            if (seen == null) {
                return unchanged(StoreReply.refused(other + " is Primary of " + cur.name() + " (term " + cur.term()
                        + "): demote it first, or promote when its lease has expired"));
            }
            if (seen != leaseSeq(other)) {
                return unchanged(StoreReply.refused(other + " is Primary of " + cur.name() + " (term " + cur.term()
                        + ") and renewed its lease after the leader saw it expire: it is alive"));
            }
        }
        if (!p.force() && !cur.inSync().contains(node)) {
            return unchanged(StoreReply.refused(node + " is not in the in-sync set of " + cur.name() + " "
                    + ResourceState.list(cur.inSync()) + ": it may lack acknowledged writes; resync it first, or"
                    + " promote with --force"));
        }
        long term = cur.term() + 1;
        String change = "term " + term + ": " + node + " promoted" + (p.force() ? " by force" : "") + " ("
                + p.reason() + ")" + (cur.primaries().isEmpty() ? "" : ", deposing " + String.join(", ",
                cur.primaries()) + " (lease expired)") + (p.force() ? "; in-sync set now [" + node + "]" : "");
        ResourceState next = p.force()
                ? cur.withRoles(term, Set.of(node), Set.of(node), change, new ForcedPromotion(node, term, p.reason()),
                index)
                : cur.withRoles(term, Set.of(node), cur.inSync(), change, cur.forced(), index);
        return changed(next);
    }

    private Outcome demote(ResourceState cur, Demote d, long index) {
        if (!cur.primaries().contains(d.node())) {
            return unchanged(StoreReply.ok(cur));
        }
        long term = cur.term() + 1;
        Set<String> primaries = new TreeSet<>(cur.primaries());
        primaries.remove(d.node());
        String change = "term " + term + ": " + d.node() + " demoted (" + d.reason() + ")";
        return changed(cur.withRoles(term, primaries, cur.inSync(), change, cur.forced(), index));
    }

    private Outcome removeInSync(ResourceState cur, RemoveInSync r, long index) {
        StoreReply stale = checkCurrent(cur, r.primary(), r.term());
        if (stale != null) {
            return unchanged(stale);
        }
        if (!cur.inSync().contains(r.peer())) {
            return unchanged(StoreReply.ok(cur));
        }
        Set<String> inSync = new TreeSet<>(cur.inSync());
        inSync.remove(r.peer());
        String change = "term " + cur.term() + ": " + r.peer() + " left the in-sync set (" + r.primary()
                + ": " + r.why() + ")";
        return changed(cur.withRoles(cur.term(), cur.primaries(), inSync, change, cur.forced(), index));
    }

    private Outcome addInSync(ResourceState cur, AddInSync a, long index, Set<String> holders) {
        boolean byMember = a.term() == cur.term() && cur.primaries().isEmpty() && cur.inSync().contains(a.primary());
        StoreReply stale = byMember ? null : checkCurrent(cur, a.primary(), a.term());
        if (stale != null) {
            return unchanged(stale);
        }
        if (!holders.contains(a.peer())) {
            return unchanged(StoreReply.refused(a.peer() + " holds no disk of " + cur.name() + " (holders: "
                    + ResourceState.list(holders) + ")"));
        }
        if (cur.inSync().contains(a.peer())) {
            return unchanged(StoreReply.ok(cur));
        }
        Set<String> inSync = new TreeSet<>(cur.inSync());
        inSync.add(a.peer());
        String change = "term " + cur.term() + ": " + a.peer() + " joined the in-sync set (" + a.primary()
                + (byMember ? ", a member, with no Primary" : "") + ": resynced)";
        return changed(cur.withRoles(cur.term(), cur.primaries(), inSync, change, cur.forced(), index));
    }

    /** @return null if {@code primary} is a Primary of the current term {@code term}, else the STALE_TERM reply */
    private static StoreReply checkCurrent(ResourceState cur, String primary, long term) {
        if (term == cur.term() && cur.primaries().contains(primary)) {
            return null;
        }
        String now = cur.primaries().isEmpty() ? "no Primary" : "Primary " + String.join(", ", cur.primaries());
        if (term != cur.term()) {
            return StoreReply.staleTerm("term " + term + " is not current for " + cur.name() + ": term " + cur.term()
                    + ", " + now);
        }
        return StoreReply.staleTerm(primary + " is not a Primary of " + cur.name() + " in term " + term + " ("
                + now + ")");
    }

    private Outcome unchanged(StoreReply reply) {
        return new Outcome(this, reply, null);
    }

    private Outcome changed(ResourceState next) {
        SortedMap<String, ResourceState> rs = new TreeMap<>(resources);
        rs.put(next.name(), next);
        return new Outcome(new StoreState(rs, leaseSeqs), StoreReply.ok(next), next);
    }

    /** For tests and status: one resource, never null for a resource of the file. */
    ResourceState resource(String name) {
        return resources.get(name);
    }
}
