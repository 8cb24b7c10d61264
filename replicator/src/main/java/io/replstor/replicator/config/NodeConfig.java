package io.replstor.replicator.config;

import java.nio.file.Path;
import java.util.Objects;

/**
 * One {@code [[node]]} of the cluster.
 *
 * @param name    the node's name, as {@code repld --node NAME} and {@code [resource.on.NAME]} use it
 * @param id      the node id, 0..31: the bitmap slot key in every peer's metadata; never reuse one
 * @param address where the node listens for replication connections (all resources share it)
 * @param nbd     where the node serves its resources' NBD exports
 * @param admin   the Unix socket of its admin API
 */
public record NodeConfig(String name, int id, HostPort address, HostPort nbd, Path admin) {
    public static final int MAX_NODE_ID = 31;

    public NodeConfig {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(address, "address");
        Objects.requireNonNull(nbd, "nbd");
        Objects.requireNonNull(admin, "admin");
        if (id < 0 || id > MAX_NODE_ID) {
            throw new IllegalArgumentException("node id " + id + " is out of range 0.." + MAX_NODE_ID);
        }
    }
}
