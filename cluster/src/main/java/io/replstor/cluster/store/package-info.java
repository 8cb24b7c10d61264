/**
 * The cluster store (DESIGN §5-§6): every node of the cluster file is a voting member of one Apache Ratis
 * group that decides, per resource, the term, the Primaries and the in-sync set, and keeps each node's
 * liveness lease. {@link io.replstor.cluster.store.ClusterStore} is the
 * {@link io.replstor.replicator.authority.RoleAuthority} of a cluster with {@code quorum = "majority"}.
 *
 * <p>Parts: {@code StoreState} (the replicated state and its rules, pure), {@code RoleStateMachine} (the
 * Ratis state machine: apply, the leader's lease check, snapshots), {@code Leases} (local lease
 * bookkeeping), {@code StoreClient} (bounded requests), and the authenticated {@code RaftGateway}
 * ({@code GatewayHandshake}, {@code Splice}, {@code RatisFrameDecoder}, {@code UnreachableMember}) through which members reach each other's
 * loopback-only Ratis servers.
 */
package io.replstor.cluster.store;
