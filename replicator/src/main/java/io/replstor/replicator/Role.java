package io.replstor.replicator;

/**
 * DRBD's resource roles, with DRBD's names ({@link #drbdName()}). Unknown is how a node sees a peer
 * it is not connected to.
 */
public enum Role {
    PRIMARY("Primary"),
    SECONDARY("Secondary"),
    UNKNOWN("Unknown");

    private final String drbdName;

    Role(String drbdName) {
        this.drbdName = drbdName;
    }

    public String drbdName() {
        return drbdName;
    }
}
