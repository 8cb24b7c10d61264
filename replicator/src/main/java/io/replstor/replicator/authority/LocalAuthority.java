package io.replstor.replicator.authority;

import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;

/**
 * The authority of a cluster without a store ({@code quorum = "off"}): this node decides alone, as
 * DRBD does without quorum. Every request succeeds at once; terms count this node's own role
 * changes and mean nothing to its peers, so they are not checked ({@link #enforcing()} is false).
 * Two nodes promoted at the same instant can both succeed: the generation UUIDs then detect the
 * split brain when they reconnect.
 */
public final class LocalAuthority implements RoleAuthority {
    private final Map<String, RoleView> views = new ConcurrentHashMap<>();
    private final Map<String, List<Consumer<RoleView>>> watchers = new ConcurrentHashMap<>();

    /** @param replicas per resource, the nodes that hold it (the nominal in-sync set) */
    public LocalAuthority(Map<String, Set<String>> replicas) {
        replicas.forEach((r, nodes) -> views.put(r, new RoleView(r, 0, Set.of(), nodes, 0, "quorum off")));
    }

    @Override
    public boolean enforcing() {
        return false;
    }

    @Override
    public RoleView view(String resource) {
        return views.computeIfAbsent(resource, r -> new RoleView(r, 0, Set.of(), Set.of(), 0, "quorum off"));
    }

    @Override
    public void watch(String resource, Consumer<RoleView> onView) {
        watchers.computeIfAbsent(resource, r -> new CopyOnWriteArrayList<>()).add(onView);
    }

    @Override
    public void watchQuorum(Consumer<QuorumState> onQuorum) {
        // quorum never changes without a store
    }

    @Override
    public CompletableFuture<RoleView> promote(String resource, String node, boolean force, String reason) {
        RoleView v = update(resource, node, true, reason);
        return CompletableFuture.completedFuture(v);
    }

    @Override
    public CompletableFuture<RoleView> demote(String resource, String node, String reason) {
        return CompletableFuture.completedFuture(update(resource, node, false, reason));
    }

    private RoleView update(String resource, String node, boolean primary, String reason) {
        RoleView[] out = new RoleView[1];
        boolean[] changed = {false};
        views.compute(resource, (r, v) -> {
            RoleView cur = v == null ? view(r) : v;
            if (cur.isPrimary(node) == primary) {
                out[0] = cur;
                return cur;
            }
            Set<String> p = new HashSet<>(cur.primaries());
            if (primary) {
                p.add(node);
            } else {
                p.remove(node);
            }
            long term = cur.term() + 1;
            out[0] = new RoleView(r, term, p, cur.inSync(), cur.version() + 1, "term " + term + ": " + node
                    + (primary ? " promoted" : " demoted") + " (" + reason + "; quorum off)");
            changed[0] = true;
            return out[0];
        });
        if (changed[0]) {
            for (Consumer<RoleView> w : watchers.getOrDefault(resource, List.of())) {
                w.accept(out[0]);
            }
        }
        return out[0];
    }

    @Override
    public CompletableFuture<RoleView> removeInSync(String resource, String primary, long term, String peer,
                                                    String why) {
        return CompletableFuture.completedFuture(view(resource));
    }

    @Override
    public CompletableFuture<RoleView> addInSync(String resource, String primary, long term, String peer) {
        return CompletableFuture.completedFuture(view(resource));
    }

    @Override
    public QuorumState quorum() {
        return QuorumState.OFF;
    }

    @Override
    public boolean leaseValid() {
        return true;
    }

    @Override
    public void close() {
        // nothing held
    }
}
