package io.replstor.replicator.engine;

import io.replstor.common.io.StorageException;
import io.replstor.replicator.DiskState;
import io.replstor.replicator.Role;
import io.replstor.replicator.authority.AuthorityException;
import io.replstor.replicator.authority.RoleAuthority;
import io.replstor.replicator.authority.RoleView;
import io.replstor.replicator.meta.VolumeFlag;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicReference;

/**
 * A resource's role on this node: promotion, demotion, deposition and the in-sync set as the
 * Primary keeps it, plus the NBD clients that auto-promote it (DESIGN §5).
 *
 * <p>Roles come from the {@link RoleAuthority}: a promotion is a committed transition to a new term,
 * and this node writes only while the authority's view lists it as a Primary of the term it was
 * promoted in ({@link #writeTerm}). A newer view without this node deposes it: its waiting writes
 * fail (they are never acknowledged) and it becomes Secondary.
 *
 * <p>Threads: every change runs on the resource's worker; the authority's answers are handed back to
 * it. {@link #role}, {@link #writeTerm} and {@link #view} are read by any thread. The client count is
 * guarded by this object's monitor, since NBD event loops admit and release clients.
 */
final class RoleControl {
    private static final Logger LOG = LoggerFactory.getLogger(RoleControl.class);

    private final Resource res;
    private final RoleAuthority authority;
    private final AtomicReference<RoleView> view = new AtomicReference<>();
    private volatile Role role = Role.SECONDARY;
    /** The term this node was promoted in; 0 while it is not Primary. Every data frame carries it. */
    private volatile long writeTerm;
    /** The promotion in flight (worker only), so that concurrent requests share it. */
    private CompletableFuture<String> promotion;
    /** Primary by {@code --force} while the cluster store could not be reached: a lone survivor's override. */
    private volatile boolean forcedWithoutQuorum;
    /** A demotion the store has not committed yet (retried), or null. */
    private volatile String demotionPending;
    /** Completes when the demotion asked for last is recorded in the store (or no longer needed); worker. */
    private CompletableFuture<Void> demotionRecorded = CompletableFuture.completedFuture(null);
    /** How long {@code secondary} waits for the store to record the demotion before it answers anyway. */
    private static final long DEMOTION_WAIT_SECONDS = 5;
    /** The newest write term the store refused as stale (this node was deposed in it). */
    private long staleTerm;

    // NBD clients (auto-promote), under this object's monitor
    private int clients;
    private boolean autoPromoted;

    RoleControl(Resource res, RoleAuthority authority) {
        this.res = res;
        this.authority = authority;
        this.view.set(authority.view(res.name()));
    }

    /** Subscribes to the authority: newer views and quorum changes are handled on the worker. */
    void watch() {
        authority.watch(res.name(), v -> res.post(() -> onView(v)));
        viewCommitted(authority.view(res.name())); // a change applied between the first read and the watch
        authority.watchQuorum(q -> res.post(() -> {
            res.statusView.emitResource("change");
            reconcileInSync();
        }));
    }

    Role role() {
        return role;
    }

    /** The authority's newest view of this resource as this node knows it. */
    RoleView view() {
        return view.get();
    }

    /** The term this node writes in; 0 while it is not Primary. */
    long writeTerm() {
        return writeTerm;
    }

    boolean forcedWithoutQuorum() {
        return forcedWithoutQuorum;
    }

    String demotionPending() {
        return demotionPending;
    }

    /** A view the authority returned for one of this node's own requests (any thread): keep it if newer. */
    void viewCommitted(RoleView v) {
        view.accumulateAndGet(v, (cur, nv) -> cur == null || nv.version() > cur.version() ? nv : cur);
    }

    /** Attach and detach reset the role: a node always comes up Secondary. */
    void resetToSecondary() {
        role = Role.SECONDARY;
        writeTerm = 0;
    }

    // ---- promotion

    /** The verb {@code primary [--force]} (worker): completes with the verb's message. */
    CompletableFuture<String> primaryVerb(boolean force, String reason) throws EngineException {
        synchronized (this) {
            autoPromoted = false;
        }
        return promote(force, reason);
    }

    /**
     * Promotes this node (worker): local checks first, then the committed transition in the role
     * authority, then the local state. Completes with the verb's message; fails with an
     * {@link EngineException} saying why not. Concurrent requests share one promotion.
     */
    private CompletableFuture<String> promote(boolean force, String reason) throws EngineException {
        if (!res.up) {
            throw res.state("the resource is down (replctl up " + res.name() + ")");
        }
        if (role == Role.PRIMARY) {
            return CompletableFuture.completedFuture(res.name() + " on " + res.self.name() + " is already Primary");
        }
        if (promotion != null) {
            return promotion;
        }
        for (PeerLink l : res.links) {
            // without a store this node's view of its peers is all there is; with one, the store decides
            // (a Primary whose lease expired may be replaced even while its data connection lingers)
            if (!authority.enforcing() && l.peerRole == Role.PRIMARY && l.conn == ConnState.CONNECTED) {
                throw res.state("peer " + l.peer.name() + " is Primary; demote it first (dual-primary is not enabled)");
            }
        }
        for (PeerLink l : res.links) {
            if (l.repl.isSyncTarget() && !force) {
                throw res.state("the disk is a resync target of " + l.peer.name() + " (Inconsistent); wait for the "
                        + "resync or use --force");
            }
        }
        DiskState d = res.disk;
        RoleView v = view();
        String me = res.self.name();
        boolean inSync = v.isInSync(me);
        // a restarted node is Consistent; the cluster store proves it current if it is still in the in-sync set
        boolean proven = d == DiskState.UP_TO_DATE || (d == DiskState.CONSISTENT && authority.enforcing() && inSync);
        if (!proven && !force) {
            throw res.state("the disk is " + d.drbdName() + ", not UpToDate; promoting would serve "
                    + (d == DiskState.CONSISTENT ? "data not yet proven current (connect to a peer first)"
                    : "stale or incomplete data") + "; use --force to override");
        }
        boolean forcedData = !proven;
        // the store records a forced promotion (and makes this node the only in-sync replica) only when
        // the override is needed: an UpToDate in-sync node is promoted normally even with --force
        boolean storeForce = force && (forcedData || !inSync);
        CompletableFuture<RoleView> committed = authority.promote(res.name(), me, storeForce, reason);
        if (force && !storeForce) {
            // this node's view may not show yet that it left the in-sync set: the operator's --force stands
            committed = committed.exceptionallyCompose(e -> InSyncGate.authorityError(e).code()
                    == AuthorityException.Code.REFUSED && !view().isPrimary(me)
                    ? authority.promote(res.name(), me, true, reason) : CompletableFuture.failedFuture(e));
        }
        CompletableFuture<String> p = committed
                .handleAsync((nv, e) -> promoted(nv, e, force, forcedData, reason), res.worker())
                .thenCompose(f -> f);
        promotion = p;
        p.whenCompleteAsync((m, e) -> promotion = null, res.worker());
        return p;
    }

    /** The authority answered a promotion (worker). */
    private CompletableFuture<String> promoted(RoleView v, Throwable e, boolean force, boolean forcedData,
                                               String reason) {
        if (e != null) {
            AuthorityException ae = InSyncGate.authorityError(e);
            if (force && ae.retryable()) {
                LOG.warn("resource {} on {}: {}: the cluster store cannot be reached ({}): forcing Primary without"
                        + " it, as a lone survivor; split brain is possible and will be detected, not prevented",
                        res.name(), res.self.name(), reason, ae.getMessage());
                forcedWithoutQuorum = true;
                return becomePrimary(view(), true, reason);
            }
            return CompletableFuture.failedFuture(res.state(ae.getMessage()));
        }
        viewCommitted(v);
        if (!res.up) {
            return CompletableFuture.failedFuture(res.state("the resource went down during the promotion"));
        }
        forcedWithoutQuorum = false;
        return becomePrimary(v, forcedData, reason);
    }

    /** The local side of a committed promotion in view {@code v} (worker). */
    private CompletableFuture<String> becomePrimary(RoleView v, boolean forced, String reason) {
        ReplicaSync sync = res.sync;
        try {
            Set<Integer> connected = sync.connectedPeerIds();
            boolean allPeers = connected.size() == res.links.size();
            List<Session> resync = new ArrayList<>();
            // connected peers this node holds writes for, or that hold writes of the previous Primary this node
            // may lack: the new generation leaves them behind, so that their handshake resyncs them from here
            List<Session> reconcile = forced ? List.of() : sync.toReconcile();
            for (Session s : reconcile) {
                connected.remove(s.link.peer.id());
            }
            if (forced) {
                // this node's data becomes the newest generation: every peer, connected or not, must take it
                res.md.newCurrentUuid(Set.of(), true);
                for (PeerLink l : res.links) {
                    Session s = l.replicating();
                    if (s != null && (res.disk == DiskState.INCONSISTENT || l.peerDisk != DiskState.UP_TO_DATE)) {
                        sync.setAllBits(s.slot);
                        resync.add(s);
                    }
                }
                res.md.flush();
            } else if (!allPeers || !reconcile.isEmpty()) {
                sync.rotateCurrentUuid(connected, true);
            }
            long term = v.term();
            res.md.commit(s -> s.with(VolumeFlag.PRIMARY, true).withUuids(s.uuids().withPrimaryFlag(true))
                    .withDiskState(DiskState.UP_TO_DATE).with(VolumeFlag.UNCONFIRMED_WRITES, false)
                    .withDataTerm(authority.enforcing() ? term : 0));
            res.disk = DiskState.UP_TO_DATE;
            writeTerm = term;
            role = Role.PRIMARY;
            LOG.info("resource {} on {}: Primary in term {} ({}{})", res.name(), res.self.name(), term, reason,
                    forced ? ", forced" : "");
            sync.broadcastState();
            res.statusView.emitResource("change");
            for (Session s : resync) {
                // reconnect: the handshake makes this node the sync source of a full resync
                s.fail(ConnState.UNCONNECTED, "primary --force on " + res.self.name() + ": reconnecting to resync "
                        + s.link.peer.name() + " from it");
            }
            sync.reconcileAfterPromotion(reconcile);
            reconcileInSync();
            return CompletableFuture.completedFuture(res.name() + " on " + res.self.name() + " is Primary"
                    + (authority.enforcing() ? " (term " + term + ")" : "") + (forced ? " (forced)" : "")
                    + (forcedWithoutQuorum ? " without the cluster store (no quorum)" : ""));
        } catch (IOException e) {
            LOG.error("resource {} on {}: cannot record the promotion: {}", res.name(), res.self.name(), e.getMessage());
            requestDemotion("the promotion could not be recorded on " + res.self.name() + ": " + e.getMessage());
            return CompletableFuture.failedFuture(new EngineException(EngineException.Code.IO, res.name() + " on "
                    + res.self.name() + ": cannot record the promotion: " + e.getMessage(), e));
        }
    }

    // ---- demotion and deposition

    /**
     * The verb {@code secondary} (worker): completes once the store has recorded the demotion, so that
     * another node can be promoted at once (a switchover), or after {@link #DEMOTION_WAIT_SECONDS} with
     * a message that says it has not yet (the demotion is retried until it is).
     */
    CompletableFuture<String> secondaryVerb() throws EngineException, IOException {
        synchronized (this) {
            if (clients > 0) {
                throw new EngineException(EngineException.Code.IN_USE, res.name() + " on " + res.self.name() + " has "
                        + clients + " NBD client(s); disconnect them first");
            }
            autoPromoted = false;
        }
        String done = res.name() + " on " + res.self.name() + " is Secondary";
        if (role != Role.PRIMARY) {
            return CompletableFuture.completedFuture(res.name() + " on " + res.self.name() + " is already Secondary");
        }
        demoteNow("replctl secondary");
        if (!authority.enforcing()) {
            return CompletableFuture.completedFuture(done);
        }
        return demotionRecorded.thenApply(v -> done).completeOnTimeout(done + " (the cluster store has not recorded"
                + " it yet; no other node can be promoted until it does)", DEMOTION_WAIT_SECONDS, TimeUnit.SECONDS);
    }

    /** Stops writing (waits for the writes in flight), records it, and asks the authority to commit it. */
    void demoteNow(String reason) throws IOException {
        role = Role.SECONDARY; // new I/O is refused from here on
        res.writes.awaitIdle(TimeUnit.SECONDS.toNanos(30));
        if (!res.writes.finalBarrier(writeTerm, res.cfg.timers().timeout().toNanos())) {
            LOG.warn("resource {} on {}: a peer did not acknowledge the last barrier within the timeout ({} ms);"
                    + " demoting anyway", res.name(), res.self.name(), res.cfg.timers().timeout().toMillis());
        }
        writeTerm = 0;
        res.gate.reset();
        if (res.data != null) {
            res.data.flush();
        }
        res.md.commit(s -> s.with(VolumeFlag.PRIMARY, false).withUuids(s.uuids().withPrimaryFlag(false)));
        res.md.flush();
        LOG.info("resource {} on {}: Secondary ({})", res.name(), res.self.name(), reason);
        res.sync.broadcastState();
        res.statusView.emitResource("change");
        requestDemotion(reason);
    }

    /**
     * Asks the authority to drop this node from the Primaries, again and again until it is committed:
     * until then no other node can be promoted (this node's lease stays valid while it runs).
     */
    private void requestDemotion(String reason) {
        demotionPending = reason;
        if (demotionRecorded.isDone()) {
            demotionRecorded = new CompletableFuture<>();
        }
        CompletableFuture<Void> recorded = demotionRecorded;
        authority.demote(res.name(), res.self.name(), reason).whenCompleteAsync((v, e) -> {
            if (e == null) {
                viewCommitted(v);
                demotionPending = null;
                recorded.complete(null);
                res.statusView.emitResource("change");
                return;
            }
            if (role != Role.PRIMARY && promotion == null && demotionPending != null && res.up) {
                LOG.debug("resource {} on {}: demotion not committed yet: {}", res.name(), res.self.name(),
                        e.getMessage());
                res.node.group().schedule(() -> res.post(() -> {
                    if (role != Role.PRIMARY && promotion == null && view().isPrimary(res.self.name())) {
                        requestDemotion(reason);
                    } else {
                        demotionPending = null;
                        recorded.complete(null);
                    }
                }), 500, TimeUnit.MILLISECONDS);
            } else {
                recorded.complete(null); // promoted again, or down: nothing to wait for
            }
        }, res.worker());
    }

    /**
     * Waits (bounded, on the worker: the answer is handed over by the authority's thread) until the store
     * has recorded this node's demotion, so that a cleanly stopped Primary does not block promotions
     * elsewhere until its lease runs out.
     */
    void awaitDemotionRecorded(long maxMillis) {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(maxMillis);
        while (authority.enforcing() && view().isPrimary(res.self.name()) && System.nanoTime() < deadline) {
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
            viewCommitted(authority.view(res.name()));
        }
    }

    /** A newer view from the authority (worker): deposition, stale claims, the in-sync set. */
    private void onView(RoleView v) {
        RoleView before = view();
        viewCommitted(v);
        RoleView now = view();
        String me = res.self.name();
        if (role == Role.PRIMARY && authority.enforcing() && !forcedWithoutQuorum && now.term() > writeTerm) {
            if (now.isPrimary(me)) {
                writeTerm = now.term(); // still Primary in a newer term (another node joined as Primary)
            } else {
                deposed(now);
            }
        } else if (role != Role.PRIMARY && promotion == null && now.isPrimary(me) && demotionPending == null
                && res.up) {
            // the store still lists this node (it restarted, or a demotion was lost): release the role
            requestDemotion(me + " is not Primary here");
        }
        if (before == null || before.term() != now.term() || !before.inSync().equals(now.inSync())) {
            res.statusView.emitResource("change");
        }
        reconcileInSync();
    }

    /**
     * A newer term without this node: it was deposed (its lease expired while it could not reach the
     * store). Every write still waiting fails, so none of them is acknowledged; the sessions restart
     * so that the handshake resyncs this node from the new Primary.
     */
    private void deposed(RoleView v) {
        String why = "deposed: " + v.lastChange() + " (term " + v.term() + ", Primaries: "
                + RoleView.names(v.primaries()) + ")";
        LOG.warn("resource {} on {}: {}; failing the writes still waiting and resyncing from the new Primary",
                res.name(), res.self.name(), why);
        role = Role.SECONDARY;
        writeTerm = 0;
        synchronized (this) {
            autoPromoted = false;
        }
        StorageException error = new StorageException(StorageException.Kind.IO, "resource " + res.name() + " on "
                + res.self.name() + ": " + why + "; the write was not acknowledged");
        res.joinLock.writeLock().lock();
        try {
            for (PeerLink l : res.links) {
                Session s = l.session;
                if (s != null) {
                    s.transfer.failWaiters(error);
                }
            }
        } finally {
            res.joinLock.writeLock().unlock();
        }
        res.gate.reset();
        try {
            res.md.commit(s -> s.with(VolumeFlag.PRIMARY, false).withUuids(s.uuids().withPrimaryFlag(false)));
            res.md.flush();
        } catch (IOException e) {
            LOG.error("resource {} on {}: recording the deposition: {}", res.name(), res.self.name(), e.getMessage());
        }
        res.statusView.emitResource("change");
        for (PeerLink l : res.links) {
            Session s = l.session;
            if (s != null) {
                s.fail(ConnState.UNCONNECTED, res.self.name() + " was " + why + "; reconnecting to resync");
            }
        }
    }

    /**
     * The store refused a request of {@code term} as stale: this node was deposed and its view will
     * follow. Until then it stops asking for in-sync changes (writes still fail, each on its own).
     *
     * @return true the first time for this term (log it once)
     */
    synchronized boolean depositionHint(long term) {
        if (staleTerm >= term) {
            return false;
        }
        staleTerm = term;
        return true;
    }

    void reconcileLater() {
        res.post(this::reconcileInSync);
    }

    /**
     * The Primary keeps the in-sync set true (worker): a member that is not replicating, or whose disk is
     * not UpToDate, is removed; a connected, Established, UpToDate peer outside it is added. Without a
     * Primary, an UpToDate member adds the peers it brought up to date ({@link #addResyncedPeers}).
     */
    void reconcileInSync() {
        if (!authority.enforcing() || !res.up) {
            return;
        }
        if (role != Role.PRIMARY) {
            addResyncedPeers();
            return;
        }
        if (forcedWithoutQuorum) {
            return;
        }
        synchronized (this) {
            if (staleTerm >= writeTerm) {
                return; // deposed: the new view is on its way
            }
        }
        RoleView v = view();
        InSyncGate gate = res.gate;
        for (PeerLink l : res.links) {
            String peer = l.peer.name();
            Session s = l.replicating();
            boolean current = s != null && l.repl == ReplState.ESTABLISHED && l.peerDisk == DiskState.UP_TO_DATE;
            if (v.isInSync(peer) && !current && !gate.removing(peer) && !gate.adding(peer)) {
                gate.removal(peer, s == null ? peer + " is not connected"
                        : peer + "'s disk is " + l.peerDisk.drbdName() + " (" + l.repl.drbdName() + ")");
            } else if (!v.isInSync(peer) && current && !gate.removing(peer)) {
                gate.add(peer, writeTerm);
            }
        }
    }

    /**
     * No node is Primary: an UpToDate Secondary in the in-sync set adds each connected, Established,
     * UpToDate peer outside it (one it resynced, typically after the last Primary demoted during that
     * resync), so that the peer can be promoted. The store accepts it only in a term without a Primary.
     */
    private void addResyncedPeers() {
        RoleView v = view();
        String me = res.self.name();
        if (!v.primaries().isEmpty() || !v.isInSync(me) || res.disk != DiskState.UP_TO_DATE || promotion != null
                || demotionPending != null) {
            return;
        }
        for (PeerLink l : res.links) {
            String peer = l.peer.name();
            if (!v.isInSync(peer) && l.replicating() != null && l.repl == ReplState.ESTABLISHED
                    && l.peerDisk == DiskState.UP_TO_DATE) {
                res.gate.add(peer, v.term());
            }
        }
    }

    /**
     * A Primary of this resource other than {@code peer}'s node (by the authority's view, or by a
     * connected peer's role), or null.
     */
    String primaryOtherThan(PeerLink peer) {
        if (role == Role.PRIMARY) {
            return res.self.name();
        }
        for (String p : view().primaries()) {
            if (!p.equals(peer.peer.name()) && !p.equals(res.self.name())) {
                return p;
            }
        }
        for (PeerLink l : res.links) {
            if (l != peer && l.peerRole == Role.PRIMARY && l.conn == ConnState.CONNECTED) {
                return l.peer.name();
            }
        }
        return null;
    }

    // ---- NBD clients (auto-promote)

    /**
     * Admits an NBD client without blocking the caller: a Primary admits at once; a Secondary with
     * auto-promote asks for a committed promotion first. Completes with null (admitted: {@link
     * #release} follows) or the refusal, which names the Primary.
     */
    CompletableFuture<String> admitAsync(String client) {
        synchronized (this) {
            if (role == Role.PRIMARY && res.disk == DiskState.UP_TO_DATE) {
                clients++;
                return CompletableFuture.completedFuture(null);
            }
        }
        if (!res.cfg.autoPromote()) {
            return CompletableFuture.completedFuture(whyNot("it is " + role.drbdName() + " and auto-promote is off"));
        }
        CompletableFuture<String> out = new CompletableFuture<>();
        try {
            res.worker().execute(() -> {
                try {
                    promote(false, "auto-promote for NBD client " + client).whenCompleteAsync((m, e) -> {
                        if (e != null) {
                            out.complete(whyNot(stripPrefix(InSyncGate.authorityError(e).getMessage())));
                            return;
                        }
                        synchronized (this) {
                            if (role != Role.PRIMARY) {
                                out.complete(whyNot("it stopped being Primary while admitting the client"));
                                return;
                            }
                            clients++;
                            autoPromoted = true;
                        }
                        LOG.info("resource {} on {}: auto-promoted for NBD client {}", res.name(), res.self.name(),
                                client);
                        out.complete(null);
                    }, res.worker());
                } catch (EngineException e) {
                    out.complete(whyNot(stripPrefix(e.getMessage())));
                }
            });
        } catch (java.util.concurrent.RejectedExecutionException e) {
            out.complete(whyNot("the node is shutting down"));
        }
        return out;
    }

    /** Synchronous admission for callers that may block. */
    String admit(String client) {
        try {
            return admitAsync(client).get(130, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return whyNot("interrupted");
        } catch (ExecutionException | TimeoutException e) {
            return whyNot("the promotion did not finish: " + e.getMessage());
        }
    }

    private String stripPrefix(String m) {
        String prefix = res.name() + " on " + res.self.name() + ": ";
        return m != null && m.startsWith(prefix) ? m.substring(prefix.length()) : m;
    }

    private String whyNot(String why) {
        StringBuilder b = new StringBuilder("resource " + res.name() + " cannot be used on " + res.self.name() + ": "
                + why);
        Set<String> named = new HashSet<>();
        for (PeerLink l : res.links) {
            if (l.peerRole == Role.PRIMARY || view().isPrimary(l.peer.name())) {
                if (named.add(l.peer.name())) {
                    b.append("; the Primary is ").append(l.peer.name()).append(" (nbd://").append(l.peer.nbd())
                            .append('/').append(res.name()).append(')');
                }
            }
        }
        return b.toString();
    }

    void release(String client) {
        boolean demote;
        synchronized (this) {
            clients = Math.max(0, clients - 1);
            demote = clients == 0 && autoPromoted;
        }
        if (demote) {
            res.post(() -> {
                synchronized (this) {
                    if (clients > 0 || !autoPromoted) {
                        return;
                    }
                    autoPromoted = false;
                }
                try {
                    if (role == Role.PRIMARY && res.up) {
                        demoteNow("auto-demote after the last NBD client (" + client + ") left");
                    }
                } catch (IOException e) {
                    LOG.error("resource {} on {}: auto-demote failed: {}", res.name(), res.self.name(), e.getMessage());
                }
            });
        }
    }

    synchronized int clients() {
        return clients;
    }
}
