package io.replstor.replicator.config;

import java.nio.file.Path;
import java.util.Objects;

/**
 * One {@code [[node]]} of the cluster.
 *
 * @param name    the node's name, as {@code repld --node NAME} and {@code [resource.on.NAME]} use it
 * @param id      the node id, 0..31: the bitmap slot key in every peer's metadata; never reuse one
 * @param role    a data node holds the resources' disks; a witness only votes in the cluster store
 * @param address where a data node listens for replication connections (all resources share it);
 *                null for a witness
 * @param nbd     where a data node serves its resources' NBD exports; null for a witness
 * @param admin   the Unix socket of its admin API
 * @param raft    where the node's cluster-store member listens for the other members (authenticated
 *                by the cluster's shared secret); null when the cluster has no store
 *                ({@code quorum = "off"}) or this is its only member
 * @param raftDir the cluster store's directory on this node (Raft log and snapshots)
 */
public record NodeConfig(String name, int id, Role role, HostPort address, HostPort nbd, Path admin, HostPort raft,
                         Path raftDir) {
    public static final int MAX_NODE_ID = 31;
    public static final Path RAFT_DIR_DEFAULT = Path.of("/var/lib/replstor/raft");

    /** What a node is for. */
    public enum Role {
        /** Holds disks and replicates the resources; votes in the cluster store. */
        DATA("data"),
        /** Votes in the cluster store and keeps its log; no disks (the tie-breaker of a two-node pair). */
        WITNESS("witness");

        private final String configName;

        Role(String configName) {
            this.configName = configName;
        }

        /** As written in the cluster file and in status output. */
        public String configName() {
            return configName;
        }
    }

    public NodeConfig {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(role, "role");
        Objects.requireNonNull(admin, "admin");
        Objects.requireNonNull(raftDir, "raftDir");
        if (id < 0 || id > MAX_NODE_ID) {
            throw new IllegalArgumentException("node id " + id + " is out of range 0.." + MAX_NODE_ID);
        }
        if (role == Role.DATA && (address == null || nbd == null)) {
            throw new IllegalArgumentException("data node " + name + " needs a replication address and an NBD address");
        }
        if (role == Role.WITNESS && (address != null || nbd != null)) {
            throw new IllegalArgumentException("witness " + name + " has no replication or NBD listener");
        }
    }

    /** A data node with the defaults of a cluster without a store (tests, {@code quorum = "off"}). */
    public NodeConfig(String name, int id, HostPort address, HostPort nbd, Path admin) {
        this(name, id, Role.DATA, address, nbd, admin, null, RAFT_DIR_DEFAULT);
    }

    public boolean isWitness() {
        return role == Role.WITNESS;
    }
}
