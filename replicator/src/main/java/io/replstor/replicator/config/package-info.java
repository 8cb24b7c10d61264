/**
 * The cluster configuration file: {@link io.replstor.replicator.config.ClusterConfig#load} reads the
 * TOML file that every node shares and returns immutable records (nodes, resources, per-node disks,
 * DRBD-named timers), or a {@link io.replstor.replicator.config.ClusterConfigException} listing every
 * problem as {@code FILE:LINE: KEY: what is allowed}. The schema is in {@code ClusterConfig}'s javadoc.
 */
package io.replstor.replicator.config;
