package io.replstor.cluster.store;

import io.replstor.cluster.store.StoreCommand.AddInSync;
import io.replstor.cluster.store.StoreCommand.Demote;
import io.replstor.cluster.store.StoreCommand.Promote;
import io.replstor.cluster.store.StoreCommand.RemoveInSync;
import io.replstor.cluster.store.StoreCommand.Renew;
import io.replstor.replicator.authority.AuthorityException;
import io.replstor.replicator.authority.QuorumState;
import io.replstor.replicator.authority.RoleAuthority;
import io.replstor.replicator.authority.RoleView;
import io.replstor.replicator.config.ClusterConfig;
import io.replstor.replicator.config.NodeConfig;
import org.apache.ratis.client.RaftClient;
import org.apache.ratis.protocol.Message;
import org.apache.ratis.protocol.RaftGroup;
import org.apache.ratis.protocol.RaftGroupId;
import org.apache.ratis.protocol.RaftPeerId;
import org.apache.ratis.protocol.exceptions.StateMachineException;
import org.apache.ratis.server.RaftServer;
import org.apache.ratis.server.storage.RaftStorage;
import org.apache.ratis.thirdparty.com.google.protobuf.ByteString;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * The cluster store (DESIGN §5): one Raft group of every node of the cluster file, data nodes and
 * witnesses alike, that decides per resource the term, the Primaries and the in-sync set, and keeps
 * each node's liveness lease. The {@link RoleAuthority} of a cluster with {@code quorum = "majority"}.
 *
 * <p>Decisions are Raft entries applied in log order by {@link RoleStateMachine} (rules in
 * {@link StoreState}); the only timing is the lease: every node commits a renewal each quarter lease,
 * its lease runs from the send time of the latest renewal it applied, and the leader deposes a Primary
 * only after not applying a renewal of it for {@link StoreTimings#depositionDelay()}. A node whose lease
 * runs is in contact with a majority: that is also its {@link #quorum()}.
 *
 * <p>Members reach each other only through the {@link RaftGateway}; Ratis itself listens on loopback.
 *
 * <p>Threads: role requests and status reads block on a small pool ({@code store-request}); renewals
 * on their own thread; views and quorum changes are delivered on one notification thread in apply order.
 */
public final class ClusterStore implements RoleAuthority {
    private static final Logger LOG = LoggerFactory.getLogger(ClusterStore.class);
    private static final int REQUEST_THREADS = 4;
    private static final int REQUEST_QUEUE = 64;
    private static final Message STATE_QUERY = Message.valueOf("state");

    private final StoreMembers members;
    private final NodeConfig self;
    private final StoreTimings timings;
    private final Path dir;
    private final Leases leases;
    private final RoleStateMachine machine;
    private final ScheduledExecutorService notifier;
    private final ScheduledExecutorService renewer;
    private final ThreadPoolExecutor requests;
    private final Map<String, List<Consumer<RoleView>>> viewWatchers = new ConcurrentHashMap<>();
    private final List<Consumer<QuorumState>> quorumWatchers = new CopyOnWriteArrayList<>();
    private final RaftGroupId groupId;
    private RaftGateway gateway;
    private RaftServer server;
    private StoreClient commands;
    /** Bounded by one lease: renewals (useless later) and status reads. */
    private StoreClient quick;
    private volatile String leader;
    private volatile boolean closed;
    /** Only the notification thread reads and writes it. */
    private boolean quorumPresent;

    private ClusterStore(ClusterConfig config, NodeConfig self, StoreTimings timings) {
        this.members = StoreMembers.of(config);
        this.self = self;
        this.timings = timings;
        this.dir = self.raftDir().resolve(config.name());
        this.groupId = groupId(config.name());
        this.leases = new Leases(self.name(), timings.leaseTimeout().toNanos(), System::nanoTime, members.names(),
                TimeUnit.MILLISECONDS.toMicros(System.currentTimeMillis()));
        this.notifier = Executors.newSingleThreadScheduledExecutor(daemon("store-notify-" + self.name()));
        this.renewer = Executors.newSingleThreadScheduledExecutor(daemon("store-renew-" + self.name()));
        this.requests = new ThreadPoolExecutor(REQUEST_THREADS, REQUEST_THREADS, 30, TimeUnit.SECONDS,
                new ArrayBlockingQueue<>(REQUEST_QUEUE), daemon("store-request-" + self.name()));
        this.requests.allowCoreThreadTimeOut(true);
        this.machine = new RoleStateMachine(self.name(), members, timings, leases, new RoleStateMachine.Events() {
            @Override
            public void onResourceChanged(ResourceState changed) {
                try {
                    notifier.execute(() -> deliver(changed.toView()));
                } catch (RejectedExecutionException e) {
                    // closing: the watchers have gone; the apply thread must not fail for it
                }
            }

            @Override
            public void onLeaderChanged(String newLeader) {
                if (!newLeader.equals(leader)) {
                    leader = newLeader;
                    LOG.info("cluster store {}: leader is {}{}", members.cluster(), newLeader,
                            newLeader.equals(self.name()) ? " (this node)" : "");
                }
            }
        });
    }

    /** Starts this node's member of the cluster store with timings derived from the cluster's lease-timeout. */
    public static ClusterStore start(ClusterConfig config, String nodeName) throws IOException {
        return start(config, nodeName, StoreTimings.fromLease(config.leaseTimeout()));
    }

    /**
     * Starts this node's member: its Raft server (reusing the log and snapshots under
     * {@code raft-dir/<cluster>}, or formatting a fresh directory), the gateway on its {@code raft}
     * address, and lease renewals. Returns without waiting for a leader.
     */
    public static ClusterStore start(ClusterConfig config, String nodeName, StoreTimings timings) throws IOException {
        if (!config.hasStore()) {
            throw new IllegalArgumentException(config.source() + ": cluster '" + config.name() + "' runs with quorum ="
                    + " \"off\" and has no cluster store");
        }
        NodeConfig self = config.node(nodeName).orElseThrow(() -> new IOException(config.source() + ": node '"
                + nodeName + "' is not in cluster '" + config.name() + "'"));
        ClusterStore store = new ClusterStore(config, self, timings);
        try {
            store.open(config);
        } catch (IOException | RuntimeException e) {
            store.close();
            throw e;
        }
        return store;
    }

    /** The group id: the same for every member, from the cluster name alone. */
    static RaftGroupId groupId(String clusterName) {
        return RaftGroupId.valueOf(UUID.nameUUIDFromBytes(("replstor-cluster:" + clusterName)
                .getBytes(StandardCharsets.UTF_8)));
    }

    private void open(ClusterConfig config) throws IOException {
        Files.createDirectories(dir);
        Map<String, InetSocketAddress> viaGateway = Map.of();
        if (members.nodes().size() > 1) {
            gateway = new RaftGateway(members, self, config.sharedSecret(), timings.gatewayConnectTimeout());
            viaGateway = gateway.openOutbound();
        }
        int ratisPort = startServer(viaGateway);
        if (gateway != null) {
            gateway.openInbound(self.raft(), ratisPort);
        }
        startClients(StoreProperties.group(groupId, members, viaGateway, "127.0.0.1:" + ratisPort));
        // at a fixed rate: after a renewal waited out a leader election, the next one goes at once
        renewer.scheduleAtFixedRate(this::renew, 0, timings.renewInterval().toMillis(), TimeUnit.MILLISECONDS);
        long checkMs = timings.quorumCheckInterval().toMillis();
        notifier.scheduleWithFixedDelay(this::checkQuorum, checkMs, checkMs, TimeUnit.MILLISECONDS);
        LOG.info("cluster store {}: node {} started (members {}; lease {} ms; Ratis on 127.0.0.1:{}; {})",
                members.cluster(), self.name(), members.describe(), timings.leaseTimeout().toMillis(), ratisPort, dir);
    }

    /** @return the loopback port the Raft server listens on */
    private int startServer(Map<String, InetSocketAddress> viaGateway) throws IOException {
        // The server's group carries this node's own addresses of the others (its gateway's loopback
        // listeners): Ratis makes a peer's proxy from the first address registered for it, and the
        // startup group is registered before any configuration entry of the log (written with the
        // leader's addresses), so these are the ones used. Its own entry is never dialled.
        String selfAddress = self.raft() != null ? self.raft().toString() : "127.0.0.1:0";
        server = RaftServer.newBuilder().setServerId(RaftPeerId.valueOf(self.name()))
                .setGroup(StoreProperties.group(groupId, members, viaGateway, selfAddress))
                .setStateMachine(machine)
                .setProperties(StoreProperties.server(dir, timings))
                .setOption(RaftStorage.StartupOption.RECOVER) // reuse the log and snapshots; format a fresh dir
                .build();
        server.start();
        return server.getServerRpc().getInetSocketAddress().getPort();
    }

    /** Two clients: role requests get the request budget, renewals and status reads one lease. */
    private void startClients(RaftGroup group) {
        RaftPeerId me = RaftPeerId.valueOf(self.name());
        commands = new StoreClient(RaftClient.newBuilder().setRaftGroup(group).setLeaderId(me)
                .setProperties(StoreProperties.client(timings)), timings.requestTimeout(), () -> closed);
        quick = new StoreClient(RaftClient.newBuilder().setRaftGroup(group).setLeaderId(me)
                .setProperties(StoreProperties.client(timings)), timings.leaseTimeout(), () -> closed);
    }

    // ---- RoleAuthority ----

    @Override
    public boolean enforcing() {
        return true;
    }

    @Override
    public RoleView view(String resource) {
        ResourceState r = machine.state().resource(resource);
        return r != null ? r.toView() : new RoleView(resource, 0, Set.of(), Set.of(), 0, "");
    }

    @Override
    public void watch(String resource, Consumer<RoleView> onView) {
        viewWatchers.computeIfAbsent(resource, r -> new CopyOnWriteArrayList<>()).add(onView);
    }

    @Override
    public void watchQuorum(Consumer<QuorumState> onQuorum) {
        quorumWatchers.add(onQuorum);
    }

    @Override
    public CompletableFuture<RoleView> promote(String resource, String node, boolean force, String reason) {
        return request("promote " + node + (force ? " by force" : "") + " for " + resource,
                new Promote(resource, node, force, reason, Map.of()));
    }

    @Override
    public CompletableFuture<RoleView> demote(String resource, String node, String reason) {
        return request("demote " + node + " for " + resource, new Demote(resource, node, reason));
    }

    @Override
    public CompletableFuture<RoleView> removeInSync(String resource, String primary, long term, String peer,
                                                    String why) {
        return request("remove " + peer + " from the in-sync set of " + resource,
                new RemoveInSync(resource, primary, term, peer, why));
    }

    @Override
    public CompletableFuture<RoleView> addInSync(String resource, String primary, long term, String peer) {
        return request("add " + peer + " to the in-sync set of " + resource, new AddInSync(resource, primary, term,
                peer));
    }

    /** Present while this node's lease runs: its latest applied renewal was committed by a majority within a lease. */
    @Override
    public QuorumState quorum() {
        if (leases.valid()) {
            String l = currentLeader();
            return new QuorumState(true, "member of a majority (leader " + (l == null ? "unknown" : l) + ")");
        }
        return new QuorumState(false, "no quorum: " + unheard());
    }

    @Override
    public boolean leaseValid() {
        return leases.valid();
    }

    /** How long this node's lease still runs (negative: expired that long ago); tests compare it with deposition. */
    long leaseRemainingNanos() {
        return leases.remainingNs();
    }

    /** The members this node has not applied a renewal of within a lease, and for how long. */
    private String unheard() {
        long leaseNs = timings.leaseTimeout().toNanos();
        List<String> silent = new ArrayList<>();
        for (String m : members.names()) {
            long since = leases.sinceAppliedNs(m);
            if (!m.equals(self.name()) && since > leaseNs) {
                silent.add(m + " for " + Leases.seconds(since));
            }
        }
        String l = currentLeader();
        String leaderPart = "leader " + (l == null ? "unknown" : l);
        if (silent.isEmpty()) {
            return "this node's lease renewals are not committing (" + leaderPart + ")";
        }
        return "not heard from " + String.join(", ", silent) + " (" + leaderPart + ")";
    }

    // ---- status ----

    /**
     * The store as the admin API shows it: answered with a linearizable read through the leader when
     * this node has quorum ({@code stale} false), else from this node's applied state ({@code stale} true).
     */
    public CompletableFuture<Map<String, Object>> status() {
        if (closed || !quorum().present()) {
            return CompletableFuture.completedFuture(statusOf(machine.state(), true));
        }
        CompletableFuture<Map<String, Object>> f = new CompletableFuture<>();
        try {
            requests.execute(() -> {
                StoreState s = null;
                try {
                    s = StoreJson.state(quick.read(STATE_QUERY).getMessage().getContent());
                } catch (IOException | RuntimeException e) {
                    LOG.debug("cluster store {}: linearizable status read failed: {}", members.cluster(), e.toString());
                }
                f.complete(s != null ? statusOf(s, false) : statusOf(machine.state(), true));
            });
        } catch (RejectedExecutionException e) {
            f.complete(statusOf(machine.state(), true));
        }
        return f;
    }

    private Map<String, Object> statusOf(StoreState s, boolean stale) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("cluster", members.cluster());
        m.put("node", self.name());
        QuorumState q = quorum();
        m.put("quorum", ordered("present", q.present(), "why", q.why()));
        m.put("leader", currentLeader());
        m.put("members", memberStatus());
        List<Map<String, Object>> rs = new ArrayList<>();
        for (ResourceState r : s.resources().values()) {
            rs.add(ordered("name", r.name(), "term", r.term(), "primaries", List.copyOf(r.primaries()),
                    "in_sync", List.copyOf(r.inSync()), "last_change", r.lastChange(),
                    "forced", r.forced() == null ? null : ordered("node", r.forced().node(), "term",
                            r.forced().term(), "reason", r.forced().reason())));
        }
        m.put("resources", rs);
        m.put("stale", stale);
        m.put("log", ordered("applied_index", machine.getLastAppliedTermIndex().getIndex(), "snapshot_index",
                machine.snapshotTakenIndex(), "restored_snapshot_index", machine.snapshotLoadedIndex()));
        m.put("gateway", gateway == null ? null : ordered("refused", gateway.refusals(), "last_refusal",
                gateway.lastRefusal()));
        return m;
    }

    private List<Map<String, Object>> memberStatus() {
        long leaseNs = timings.leaseTimeout().toNanos();
        List<Map<String, Object>> out = new ArrayList<>();
        for (NodeConfig n : members.nodes().values()) {
            boolean me = n.name().equals(self.name());
            long since = leases.sinceAppliedNs(n.name());
            out.add(ordered("name", n.name(), "role", n.role().configName(), "this_node", me,
                    "reachable", me ? leases.valid() : since <= leaseNs,
                    "last_seen_ms", TimeUnit.NANOSECONDS.toMillis(since)));
        }
        return out;
    }

    private static Map<String, Object> ordered(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put((String) kv[i], kv[i + 1]);
        }
        return m;
    }

    /** The leader as this member's Raft server knows it now, or null. */
    public String currentLeader() {
        try {
            RaftPeerId id = server == null ? null : server.getDivision(groupId).getInfo().getLeaderId();
            return id == null ? null : id.toString();
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    /** This member's store directory ({@code raft-dir/<cluster>}). */
    public Path directory() {
        return dir;
    }

    // ---- requests ----

    private CompletableFuture<RoleView> request(String what, StoreCommand command) {
        CompletableFuture<RoleView> f = new CompletableFuture<>();
        if (closed) {
            f.completeExceptionally(closedError(what));
            return f;
        }
        try {
            requests.execute(() -> {
                try {
                    f.complete(send(what, command));
                } catch (AuthorityException e) {
                    f.completeExceptionally(e);
                } catch (RuntimeException e) {
                    f.completeExceptionally(new AuthorityException(AuthorityException.Code.UNAVAILABLE, what
                            + ": the cluster store on " + self.name() + " failed: " + e, e));
                }
            });
        } catch (RejectedExecutionException e) {
            f.completeExceptionally(closed ? closedError(what) : new AuthorityException(
                    AuthorityException.Code.UNAVAILABLE, what + ": the cluster store on " + self.name() + " has "
                    + REQUEST_QUEUE + " requests waiting already"));
        }
        return f;
    }

    private RoleView send(String what, StoreCommand command) throws AuthorityException {
        ByteString reply;
        try {
            reply = commands.write(Message.valueOf(StoreJson.command(command))).getMessage().getContent();
        } catch (StateMachineException e) {
            throw refusal(what, e);
        } catch (IOException e) {
            throw closed ? closedError(what) : new AuthorityException(AuthorityException.Code.NO_QUORUM, what
                    + ": not committed within " + Leases.seconds(timings.requestTimeout().toNanos()) + " ("
                    + quorum().why() + "; " + e.getClass().getSimpleName() + ")", e);
        }
        StoreReply r;
        try {
            r = StoreJson.reply(reply);
        } catch (IOException e) {
            throw new AuthorityException(AuthorityException.Code.UNAVAILABLE, what + ": unreadable reply: " + e, e);
        }
        if (r.failed()) {
            throw new AuthorityException(r.code(), r.message());
        }
        return r.view().toView();
    }

    /** The leader refused before appending ({@link StoreRefusal}), or the state machine failed. */
    private AuthorityException refusal(String what, StateMachineException e) {
        if (e.getCause() instanceof StoreRefusal r) {
            return new AuthorityException(AuthorityException.Code.REFUSED, r.getMessage());
        }
        return new AuthorityException(AuthorityException.Code.UNAVAILABLE, what + ": the cluster store failed: "
                + e.getMessage(), e);
    }

    private AuthorityException closedError(String what) {
        return new AuthorityException(AuthorityException.Code.UNAVAILABLE, what + ": the cluster store on "
                + self.name() + " is closed");
    }

    // ---- leases and notifications ----

    /** One renewal at a time, on the renewal thread: a renewal that cannot commit is given up after a lease. */
    private void renew() {
        if (closed) {
            return;
        }
        long seq = leases.nextRenewal();
        try {
            quick.write(Message.valueOf(StoreJson.command(new Renew(self.name(), seq))));
        } catch (IOException | RuntimeException e) {
            LOG.debug("cluster store {}: renewal {} of {} not committed: {}", members.cluster(), seq, self.name(),
                    e.toString());
        }
    }

    private void checkQuorum() {
        QuorumState q = quorum();
        if (q.present() == quorumPresent) {
            return;
        }
        quorumPresent = q.present();
        LOG.info("cluster store {}: node {}: {}", members.cluster(), self.name(), q.present() ? "quorum: " + q.why()
                : q.why());
        for (Consumer<QuorumState> w : quorumWatchers) {
            call(w, q);
        }
        viewWatchers.forEach((resource, ws) -> {
            RoleView v = view(resource);
            ws.forEach(w -> call(w, v));
        });
    }

    private void deliver(RoleView v) {
        for (Consumer<RoleView> w : viewWatchers.getOrDefault(v.resource(), List.of())) {
            call(w, v);
        }
    }

    /** A watcher's failure is its own: log it and go on with the others. */
    private <T> void call(Consumer<T> w, T value) {
        try {
            w.accept(value);
        } catch (RuntimeException e) {
            LOG.error("cluster store {}: a watcher failed on {}: {}", members.cluster(), value, e.toString(), e);
        }
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        renewer.shutdownNow();
        notifier.shutdownNow(); // watchers hear nothing of a store that is going away
        closeQuietly(commands);
        closeQuietly(quick);
        // the gateway first: members see this node go at once, and nothing dials a closed Ratis port
        if (gateway != null) {
            gateway.close();
        }
        if (server != null) {
            try {
                server.close();
            } catch (IOException | RuntimeException e) {
                LOG.warn("cluster store {}: closing the Raft server: {}", members.cluster(), e.toString());
            }
        }
        requests.shutdownNow();
        LOG.info("cluster store {}: node {} stopped", members.cluster(), self.name());
    }

    private static void closeQuietly(StoreClient c) {
        if (c != null) {
            c.close();
        }
    }

    private static java.util.concurrent.ThreadFactory daemon(String name) {
        return r -> {
            Thread t = new Thread(r, name);
            t.setDaemon(true);
            return t;
        };
    }
}
