package io.replstor.replicator.engine;

/** DRBD's replication states (per peer), with DRBD's names. */
public enum ReplState {
    OFF("Off"),
    ESTABLISHED("Established"),
    STARTING_SYNC_S("StartingSyncS"),
    STARTING_SYNC_T("StartingSyncT"),
    WF_BITMAP_S("WFBitMapS"),
    WF_BITMAP_T("WFBitMapT"),
    WF_SYNC_UUID("WFSyncUUID"),
    SYNC_SOURCE("SyncSource"),
    SYNC_TARGET("SyncTarget"),
    PAUSED_SYNC_S("PausedSyncS"),
    PAUSED_SYNC_T("PausedSyncT");

    private final String drbdName;

    ReplState(String drbdName) {
        this.drbdName = drbdName;
    }

    public String drbdName() {
        return drbdName;
    }

    /** Whether application writes are sent to the peer in this state (instead of marked out of sync). */
    public boolean replicates() {
        return this != OFF;
    }

    /** This node is (about to be) the target of a resync from the peer: its disk is Inconsistent meanwhile. */
    public boolean isSyncTarget() {
        return this == SYNC_TARGET || this == PAUSED_SYNC_T || this == WF_BITMAP_T;
    }

    /** This node is (about to be) the source of a resync to the peer. */
    public boolean isSyncSource() {
        return this == SYNC_SOURCE || this == PAUSED_SYNC_S || this == WF_BITMAP_S;
    }

    public boolean syncing() {
        return this == SYNC_SOURCE || this == SYNC_TARGET || this == PAUSED_SYNC_S || this == PAUSED_SYNC_T;
    }
}
