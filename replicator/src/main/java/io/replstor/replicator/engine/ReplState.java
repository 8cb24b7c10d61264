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

    public boolean syncing() {
        return this == SYNC_SOURCE || this == SYNC_TARGET || this == PAUSED_SYNC_S || this == PAUSED_SYNC_T;
    }
}
