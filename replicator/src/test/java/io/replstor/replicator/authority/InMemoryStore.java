package io.replstor.replicator.authority;

import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.Consumer;

/**
 * A test double for the cluster store (the seam DESIGN §1 names): one linearizable state shared by
 * in-process nodes, with the store's rules (terms, one Primary, the in-sync set, leases), and per
 * node switches for what a partition does: {@link NodeAuthority#quorum} (requests fail NO_QUORUM and
 * no views arrive) and {@link NodeAuthority#lease}. Leases do not expire by time here: a test says
 * when a node's lease is over ({@link #expireLease}).
 */
public final class InMemoryStore {
    private final Map<String, State> resources = new HashMap<>();
    private final Map<String, NodeAuthority> nodes = new HashMap<>();
    private final Set<String> expired = new HashSet<>();
    private long version;

    private static final class State {
        long term;
        Set<String> primaries = new LinkedHashSet<>();
        Set<String> inSync = new LinkedHashSet<>();
        String lastChange = "";
    }

    /** A resource held by {@code replicas}, all in sync at first. */
    public synchronized InMemoryStore resource(String name, Set<String> replicas) {
        State s = new State();
        s.inSync.addAll(replicas);
        resources.put(name, s);
        return this;
    }

    public synchronized NodeAuthority node(String name) {
        return nodes.computeIfAbsent(name, NodeAuthority::new);
    }

    /** {@code node}'s lease is over: another node may now replace it as Primary. */
    public synchronized void expireLease(String node) {
        expired.add(node);
    }

    /** {@code node} renewed its lease again (it is back in contact). */
    public synchronized void renewLease(String node) {
        expired.remove(node);
    }

    public synchronized RoleView view(String resource) {
        State s = resources.get(resource);
        return new RoleView(resource, s.term, s.primaries, s.inSync, version, s.lastChange);
    }

    private synchronized RoleView apply(String resource, Change c) throws AuthorityException {
        State s = resources.get(resource);
        if (s == null) {
            throw new AuthorityException(AuthorityException.Code.REFUSED, "no resource " + resource);
        }
        if (c.apply(s)) {
            version++;
        }
        RoleView v = view(resource);
        for (NodeAuthority n : nodes.values()) {
            n.deliver(v);
        }
        return v;
    }

    @FunctionalInterface
    private interface Change {
        /** @return whether anything changed */
        boolean apply(State s) throws AuthorityException;
    }

    private boolean promote(State s, String node, boolean force, String reason) throws AuthorityException {
        if (s.primaries.contains(node)) {
            return false;
        }
        for (String p : s.primaries) {
            if (!expired.contains(p)) {
                throw new AuthorityException(AuthorityException.Code.REFUSED, p + " is Primary (term " + s.term
                        + "); its lease is valid");
            }
        }
        if (!force && !s.inSync.contains(node)) {
            throw new AuthorityException(AuthorityException.Code.REFUSED, node + " is not in the in-sync set "
                    + s.inSync);
        }
        s.term++;
        s.primaries = new LinkedHashSet<>(List.of(node));
        if (force) {
            s.inSync = new LinkedHashSet<>(List.of(node));
        }
        s.lastChange = "term " + s.term + ": " + node + " promoted (" + reason + ")";
        return true;
    }

    private static void current(State s, String primary, long term) throws AuthorityException {
        if (term != s.term || !s.primaries.contains(primary)) {
            throw new AuthorityException(AuthorityException.Code.STALE_TERM, "term " + term + " is not current: term "
                    + s.term + ", Primaries " + s.primaries);
        }
    }

    /** One node's connection to the store. */
    public final class NodeAuthority implements RoleAuthority {
        private final String name;
        private final ExecutorService notifier;
        private final Map<String, List<Consumer<RoleView>>> watchers = new HashMap<>();
        private final List<Consumer<QuorumState>> quorumWatchers = new CopyOnWriteArrayList<>();
        private final Map<String, RoleView> views = new HashMap<>();
        private volatile boolean quorum = true;
        private volatile boolean lease = true;

        private NodeAuthority(String name) {
            this.name = name;
            this.notifier = Executors.newSingleThreadExecutor(r -> {
                Thread t = new Thread(r, "store-" + name);
                t.setDaemon(true);
                return t;
            });
        }

        /** Cuts this node off from the store (false) or lets it back (true: it catches up on every view). */
        public void quorum(boolean present) {
            quorum = present;
            if (present) {
                synchronized (InMemoryStore.this) {
                    for (String r : resources.keySet()) {
                        deliver(InMemoryStore.this.view(r));
                    }
                }
            }
            QuorumState q = quorum();
            notifier.execute(() -> quorumWatchers.forEach(w -> w.accept(q)));
        }

        public void lease(boolean valid) {
            lease = valid;
        }

        private void deliver(RoleView v) {
            if (!quorum) {
                return;
            }
            notifier.execute(() -> {
                synchronized (views) {
                    RoleView cur = views.get(v.resource());
                    if (cur != null && cur.version() >= v.version()) {
                        return;
                    }
                    views.put(v.resource(), v);
                }
                List<Consumer<RoleView>> ws;
                synchronized (watchers) {
                    ws = List.copyOf(watchers.getOrDefault(v.resource(), List.of()));
                }
                ws.forEach(w -> w.accept(v));
            });
        }

        private CompletableFuture<RoleView> request(String resource, Change c) {
            if (!quorum) {
                return CompletableFuture.failedFuture(new AuthorityException(AuthorityException.Code.NO_QUORUM,
                        name + " cannot reach the store"));
            }
            try {
                return CompletableFuture.completedFuture(apply(resource, c));
            } catch (AuthorityException e) {
                return CompletableFuture.failedFuture(e);
            }
        }

        @Override
        public boolean enforcing() {
            return true;
        }

        @Override
        public RoleView view(String resource) {
            synchronized (views) {
                RoleView v = views.get(resource);
                if (v != null) {
                    return v;
                }
            }
            synchronized (InMemoryStore.this) {
                return InMemoryStore.this.view(resource);
            }
        }

        @Override
        public void watch(String resource, Consumer<RoleView> onView) {
            synchronized (watchers) {
                watchers.computeIfAbsent(resource, r -> new CopyOnWriteArrayList<>()).add(onView);
            }
        }

        @Override
        public void watchQuorum(Consumer<QuorumState> onQuorum) {
            quorumWatchers.add(onQuorum);
        }

        @Override
        public CompletableFuture<RoleView> promote(String resource, String node, boolean force, String reason) {
            return request(resource, s -> InMemoryStore.this.promote(s, node, force, reason));
        }

        @Override
        public CompletableFuture<RoleView> demote(String resource, String node, String reason) {
            return request(resource, s -> {
                if (!s.primaries.remove(node)) {
                    return false;
                }
                s.term++;
                s.lastChange = "term " + s.term + ": " + node + " demoted (" + reason + ")";
                return true;
            });
        }

        @Override
        public CompletableFuture<RoleView> removeInSync(String resource, String primary, long term, String peer,
                                                        String why) {
            return request(resource, s -> {
                current(s, primary, term);
                return s.inSync.remove(peer);
            });
        }

        @Override
        public CompletableFuture<RoleView> addInSync(String resource, String primary, long term, String peer) {
            return request(resource, s -> {
                if (!(term == s.term && s.primaries.isEmpty() && s.inSync.contains(primary))) {
                    current(s, primary, term); // else a member of the set vouches for it while there is no Primary
                }
                return s.inSync.add(peer);
            });
        }

        @Override
        public QuorumState quorum() {
            return quorum ? new QuorumState(true, name + " reaches the in-memory store")
                    : new QuorumState(false, name + " is cut off from the in-memory store");
        }

        @Override
        public boolean leaseValid() {
            return lease;
        }

        @Override
        public void close() {
            notifier.shutdownNow();
        }
    }
}
