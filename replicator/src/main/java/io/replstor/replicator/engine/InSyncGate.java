package io.replstor.replicator.engine;

import io.replstor.common.io.StorageException;
import io.replstor.replicator.Role;
import io.replstor.replicator.authority.AuthorityException;
import io.replstor.replicator.authority.RoleAuthority;
import io.replstor.replicator.config.ResourceConfig;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * The Primary's side of the in-sync set (DESIGN §5, rule 2): a write completes only when every member
 * of the committed in-sync set has confirmed it, or after the removal of a silent member has been
 * committed in the cluster store. This class asks for those removals (and for the additions of
 * peers that caught up) and lets writes wait for them.
 *
 * <p>A removal that cannot be committed because this node has no quorum is retried under
 * {@code on-no-quorum suspend-io} (the writes wait: I/O is suspended) and fails the waiting writes
 * under {@code io-error}. A removal refused because the term moved on means this node was deposed:
 * the waiting writes fail, and none of them is ever acknowledged.
 *
 * <p>Thread-safe: writes attach from I/O threads, the resource worker asks for changes, results
 * arrive on the authority's threads. Without an enforcing authority ({@code quorum = "off"}) it does
 * nothing: a lost peer is simply marked out of sync, as DRBD does.
 */
final class InSyncGate {
    private static final Logger LOG = LoggerFactory.getLogger(InSyncGate.class);
    private static final long RETRY_MS = 250;

    private final Resource res;
    private final RoleAuthority authority;
    /** Peer name → its removal in progress (completes when committed, fails when deposed or io-error). */
    private final Map<String, CompletableFuture<Void>> removals = new ConcurrentHashMap<>();
    /** Peers whose addition is in flight: they count as members until it is decided. */
    private final Set<String> adding = ConcurrentHashMap.newKeySet();
    /** Why I/O waits, for status and events; null when nothing waits. */
    private volatile String suspendedWhy;

    InSyncGate(Resource res, RoleAuthority authority) {
        this.res = res;
        this.authority = authority;
    }

    /**
     * Whether a write that {@code peer} does not confirm must wait for its removal: it is a member of
     * the in-sync set as committed, or about to be (an addition in flight), or its removal is not yet
     * committed.
     */
    boolean guards(String peer) {
        if (!authority.enforcing() || res.writeTerm() == 0) {
            return false; // only a Primary's writes wait for the in-sync set
        }
        return res.view().isInSync(peer) || adding.contains(peer) || removals.containsKey(peer);
    }

    /** Makes {@code op} wait for the committed removal of {@code peer} (asked for if not yet). */
    void attach(WriteOp op, String peer, String why) {
        op.addPart();
        removal(peer, why).whenComplete((ok, e) -> {
            if (e == null) {
                op.peerDone();
            } else {
                op.fail(storageError(e));
            }
        });
    }

    /** The removal of {@code peer} in progress, or a new one. */
    CompletableFuture<Void> removal(String peer, String why) {
        CompletableFuture<Void> f = removals.get(peer);
        if (f != null) {
            return f;
        }
        CompletableFuture<Void> mine = new CompletableFuture<>();
        f = removals.putIfAbsent(peer, mine);
        if (f != null) {
            return f;
        }
        tryRemove(peer, why, mine, 0);
        return mine;
    }

    private void tryRemove(String peer, String why, CompletableFuture<Void> f, int attempt) {
        long term = res.writeTerm();
        authority.removeInSync(res.name(), res.self.name(), term, peer, why).whenComplete((v, e) -> {
            if (e == null) {
                removals.remove(peer, f);
                res.viewCommitted(v);
                LOG.info("resource {} on {}: {} removed from the in-sync set (term {}): {}", res.name(),
                        res.self.name(), peer, v.term(), why);
                clearSuspension();
                f.complete(null);
                return;
            }
            AuthorityException ae = authorityError(e);
            if (ae.retryable() && res.cfg.onNoQuorum() == ResourceConfig.OnNoQuorum.SUSPEND_IO && res.writeTerm() == term
                    && term > 0 && !res.stopping()) {
                suspendedWhy = "I/O suspended: writes wait until " + peer + "'s removal from the in-sync set is"
                        + " committed: " + ae.getMessage();
                if (attempt == 0) {
                    LOG.warn("resource {} on {}: {}", res.name(), res.self.name(), suspendedWhy);
                }
                res.node.group().schedule(() -> tryRemove(peer, why, f, attempt + 1), RETRY_MS, TimeUnit.MILLISECONDS);
                return;
            }
            removals.remove(peer, f);
            clearSuspension();
            String msg = "resource " + res.name() + " on " + res.self.name() + ": cannot remove " + peer
                    + " from the in-sync set, so writes it did not confirm cannot complete: " + ae.getMessage();
            boolean stale = ae.code() == AuthorityException.Code.STALE_TERM;
            if (!stale || res.roles.depositionHint(term)) {
                LOG.error("{}", msg);
            }
            f.completeExceptionally(new StorageException(StorageException.Kind.IO, msg, ae));
        });
    }

    private void clearSuspension() {
        if (removals.isEmpty()) {
            suspendedWhy = null;
        }
    }

    /**
     * Asks for {@code peer}'s addition (it is connected, Established and UpToDate); idempotent. As
     * Primary in its write term; as a Secondary in the in-sync set, in {@code term}, which has no
     * Primary (the store refuses it if a promotion came first).
     */
    void add(String peer, long term) {
        if (!authority.enforcing() || !adding.add(peer)) {
            return;
        }
        boolean primary = res.role() == Role.PRIMARY;
        authority.addInSync(res.name(), res.self.name(), term, peer).whenComplete((v, e) -> {
            adding.remove(peer);
            if (e == null) {
                res.viewCommitted(v);
                LOG.info("resource {} on {}: {} is in sync again: added to the in-sync set (term {}{})", res.name(),
                        res.self.name(), peer, v.term(), primary ? "" : ", no Primary");
            } else if (primary || authorityError(e).code() != AuthorityException.Code.STALE_TERM) {
                LOG.warn("resource {} on {}: cannot add {} to the in-sync set: {}", res.name(), res.self.name(),
                        peer, authorityError(e).getMessage());
            } else {
                // a Secondary's addition lost a race with a promotion: the new Primary adds the peer itself
                LOG.info("resource {} on {}: {} not added to the in-sync set: {}", res.name(), res.self.name(), peer,
                        authorityError(e).getMessage());
            }
            res.roles.reconcileLater();
        });
    }

    boolean removing(String peer) {
        return removals.containsKey(peer);
    }

    boolean adding(String peer) {
        return adding.contains(peer);
    }

    /** Why writes wait, or null. */
    String suspendedWhy() {
        return suspendedWhy;
    }

    /**
     * Fails every write waiting for a removal (the node is stopping): they were never acknowledged. The
     * removals themselves may still commit; nothing waits for them.
     */
    void failWaiting(String why) {
        for (Map.Entry<String, CompletableFuture<Void>> e : removals.entrySet()) {
            if (removals.remove(e.getKey(), e.getValue())) {
                e.getValue().completeExceptionally(new StorageException(StorageException.Kind.IO, why));
            }
        }
        suspendedWhy = null;
    }

    /** The node stopped being Primary: pending requests end on their own (stale term); nothing more to ask. */
    void reset() {
        suspendedWhy = null;
    }

    static AuthorityException authorityError(Throwable e) {
        Throwable c = e instanceof CompletionException && e.getCause() != null ? e.getCause() : e;
        return c instanceof AuthorityException ae ? ae
                : new AuthorityException(AuthorityException.Code.UNAVAILABLE, String.valueOf(c.getMessage()), c);
    }

    private static StorageException storageError(Throwable e) {
        Throwable c = e instanceof CompletionException && e.getCause() != null ? e.getCause() : e;
        return c instanceof StorageException se ? se : new StorageException(StorageException.Kind.IO,
                String.valueOf(c.getMessage()), c);
    }
}
