package io.replstor.replicator.config;

/**
 * When a replicated write completes to the application (DRBD's protocols; default C).
 */
public enum ReplicationProtocol {
    /** Local write done and the write handed to the transport: a failover can lose the last writes. */
    A,
    /** Local write done and every connected peer has received the write (not yet written it). */
    B,
    /** Local write done and every connected peer has written it durably. */
    C
}
