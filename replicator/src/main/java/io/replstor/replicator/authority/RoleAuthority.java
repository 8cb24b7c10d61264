package io.replstor.replicator.authority;

import java.util.concurrent.CompletableFuture;
import java.util.function.Consumer;

/**
 * Who may write: the seam between the engine and the cluster store (DESIGN §5). The engine asks it
 * before any role change or in-sync change, and every data frame carries the term it grants.
 *
 * <p>Two implementations: the cluster store (a Raft group of every node; decisions are committed by
 * a majority, so two nodes promoted at the same instant cannot both succeed) and
 * {@link LocalAuthority} for {@code quorum = "off"}, where each node decides alone as DRBD does
 * without quorum.
 *
 * <p>Requests complete on the authority's threads: the engine must hand the result back to the
 * resource's own executor before it touches state. A failed request completes exceptionally with an
 * {@link AuthorityException}. Node and resource names are the cluster file's.
 */
public interface RoleAuthority extends AutoCloseable {

    /**
     * True when decisions are committed by a majority and replicas must check the term of every data
     * frame; false for {@code quorum = "off"}, where the engine's local view decides.
     */
    boolean enforcing();

    /** The newest view of {@code resource} this node has applied (never null; term 0 before any change). */
    RoleView view(String resource);

    /**
     * Calls {@code onView} with every newer view of {@code resource} as this node applies it, and
     * with the current view on {@code resource}'s quorum changes. Called on the authority's notification
     * thread, in order; it must not block.
     */
    void watch(String resource, Consumer<RoleView> onView);

    /** Calls {@code onQuorum} whenever this node gains or loses quorum (on the notification thread). */
    void watchQuorum(Consumer<QuorumState> onQuorum);

    /**
     * Makes {@code node} a Primary of {@code resource} in a new term. Refused if another node is a
     * Primary whose liveness lease is valid (the message names it), or if {@code node} is not in the
     * in-sync set and {@code force} is false. A forced promotion is recorded with {@code reason} and
     * leaves {@code node} the only member of the in-sync set. Completes with the view in which
     * {@code node} is Primary (the same term if it already was).
     */
    CompletableFuture<RoleView> promote(String resource, String node, boolean force, String reason);

    /** Removes {@code node} from the Primaries in a new term (a no-op if it is not one). */
    CompletableFuture<RoleView> demote(String resource, String node, String reason);

    /**
     * The Primary {@code primary} of {@code term} removes {@code peer} from the in-sync set because it
     * did not confirm writes ({@code why}). Fails with {@link AuthorityException.Code#STALE_TERM} if
     * {@code term} is not current or {@code primary} is not one of its Primaries: the caller was deposed.
     */
    CompletableFuture<RoleView> removeInSync(String resource, String primary, long term, String peer, String why);

    /**
     * Adds {@code peer}, which now holds every acknowledged write (after its resync), to the in-sync set.
     * {@code by} is the Primary of {@code term}, or, while {@code term} has no Primary, a member of the
     * in-sync set that brought the peer up to date (no write is acknowledged without a Primary, so a
     * full copy of a member holds them all). Fails with {@link AuthorityException.Code#STALE_TERM}
     * otherwise (a promotion moved the term on, or {@code by} itself left the set).
     */
    CompletableFuture<RoleView> addInSync(String resource, String by, long term, String peer);

    /** Whether this node can commit now. */
    QuorumState quorum();

    /**
     * Whether this node's liveness lease is valid now: while it is not, the cluster may depose this
     * node, so a Primary stops serving. Always true without a store.
     */
    boolean leaseValid();

    @Override
    void close();
}
