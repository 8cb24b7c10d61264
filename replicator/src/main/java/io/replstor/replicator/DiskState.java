package io.replstor.replicator;

import java.util.Arrays;

/**
 * DRBD's disk states, with DRBD's names ({@link #drbdName()}), so operators read them as they read
 * {@code drbdadm status}.
 *
 * <p>Only four describe the data on a disk and are persisted in the metadata
 * ({@link #persistedCode()}): Inconsistent, Outdated, Consistent, UpToDate. The others are
 * transient states of an attached (or missing) disk. A node that opens its metadata and finds
 * UpToDate persisted is Consistent until a handshake or the cluster store proves it UpToDate.
 */
public enum DiskState {
    DISKLESS("Diskless", -1),
    ATTACHING("Attaching", -1),
    DETACHING("Detaching", -1),
    FAILED("Failed", -1),
    NEGOTIATING("Negotiating", -1),
    INCONSISTENT("Inconsistent", 0),
    OUTDATED("Outdated", 1),
    DUNKNOWN("DUnknown", -1),
    CONSISTENT("Consistent", 2),
    UP_TO_DATE("UpToDate", 3);

    private final String drbdName;
    private final int persistedCode;

    DiskState(String drbdName, int persistedCode) {
        this.drbdName = drbdName;
        this.persistedCode = persistedCode;
    }

    public String drbdName() {
        return drbdName;
    }

    /** Whether the metadata can hold this state. */
    public boolean persistable() {
        return persistedCode >= 0;
    }

    /** The byte stored in the superblock; only for {@link #persistable()} states. */
    public int persistedCode() {
        if (persistedCode < 0) {
            throw new IllegalStateException("disk state " + drbdName + " is not persisted in the metadata");
        }
        return persistedCode;
    }

    /** @return the state, or null if {@code code} is no persisted state */
    public static DiskState fromPersistedCode(int code) {
        for (DiskState s : values()) {
            if (s.persistedCode >= 0 && s.persistedCode == code) {
                return s;
            }
        }
        return null;
    }

    /** Parses a DRBD name case-insensitively ("UpToDate", "uptodate"). */
    public static DiskState fromDrbdName(String name) {
        for (DiskState s : values()) {
            if (s.drbdName.equalsIgnoreCase(name.trim())) {
                return s;
            }
        }
        throw new IllegalArgumentException("unknown disk state '" + name + "'; expected one of "
                + Arrays.stream(values()).map(DiskState::drbdName).toList());
    }
}
