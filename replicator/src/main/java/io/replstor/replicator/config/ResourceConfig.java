package io.replstor.replicator.config;

import io.replstor.common.Sizes;
import io.replstor.replicator.sync.AfterSbPolicy;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * One {@code [[resource]]}: a replicated volume and how its nodes replicate it. See
 * {@link ClusterConfig} for the file syntax, defaults and ranges.
 *
 * @param name                     the resource name ("r0"), also the NBD export name
 * @param sizeBytes                the volume size every node exports; a multiple of 4 KiB
 * @param protocol                 A, B or C
 * @param sharedSecret             the peer authentication secret, if any (never printed)
 * @param autoPromote              the first NBD client promotes the node, the last one leaving demotes it
 * @param timers                   connect-int, ping-int, ping-timeout, timeout, ko-count
 * @param resyncRateBytesPerSecond {@code resync-rate}
 * @param cMaxRateBytesPerSecond   {@code c-max-rate}
 * @param alExtents                {@code al-extents}: hot 4 MiB extents in the activity log
 * @param afterSb                  after-sb-0pri/1pri/2pri
 * @param maxPeers                 bitmap slots in each node's metadata
 * @param on                       per node name, in the order of the {@code [[node]]} entries
 * @param onNoQuorum               what a Primary's I/O does while it cannot reach a majority of the
 *                                 cluster store (it can then neither complete a write without a
 *                                 silent peer nor commit that peer's removal from the in-sync set)
 */
public record ResourceConfig(String name, long sizeBytes, ReplicationProtocol protocol, Optional<String> sharedSecret,
                             boolean autoPromote, NetTimers timers, long resyncRateBytesPerSecond,
                             long cMaxRateBytesPerSecond, int alExtents, AfterSbPolicy afterSb, int maxPeers,
                             Map<String, DiskConfig> on, OnNoQuorum onNoQuorum) {

    public static final int NAME_MAX_LENGTH = 62;
    public static final int SIZE_GRANULARITY_BYTES = 4096;
    public static final ReplicationProtocol PROTOCOL_DEFAULT = ReplicationProtocol.C;
    public static final int SHARED_SECRET_MAX_LENGTH = 64;
    public static final boolean AUTO_PROMOTE_DEFAULT = true;
    public static final long RESYNC_RATE_DEFAULT = 250L << 10;
    public static final long RESYNC_RATE_MIN = 1L << 10;
    public static final long C_MAX_RATE_DEFAULT = 100L << 20;
    public static final long C_MAX_RATE_MIN = 250L << 10;
    /** DRBD's upper bound for both rates: 4194304 KiB/s. */
    public static final long RATE_MAX = 4L << 30;
    public static final int AL_EXTENTS_DEFAULT = 1237;
    public static final int AL_EXTENTS_MIN = 67;
    public static final int AL_EXTENTS_MAX = 65534;
    public static final int MAX_PEERS_MAX = 31;
    public static final OnNoQuorum ON_NO_QUORUM_DEFAULT = OnNoQuorum.SUSPEND_IO;

    /** DRBD's {@code on-no-quorum}. */
    public enum OnNoQuorum {
        /** Requests wait until quorum returns (or the node learns it was deposed: then they fail). */
        SUSPEND_IO("suspend-io"),
        /** Requests that need the cluster store fail with an I/O error. */
        IO_ERROR("io-error");

        private final String configName;

        OnNoQuorum(String configName) {
            this.configName = configName;
        }

        public String configName() {
            return configName;
        }
    }

    public ResourceConfig {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(protocol, "protocol");
        Objects.requireNonNull(sharedSecret, "sharedSecret");
        Objects.requireNonNull(timers, "timers");
        Objects.requireNonNull(afterSb, "afterSb");
        Objects.requireNonNull(onNoQuorum, "onNoQuorum");
        on = Collections.unmodifiableMap(new LinkedHashMap<>(on));
        if (sizeBytes <= 0 || sizeBytes % SIZE_GRANULARITY_BYTES != 0) {
            throw new IllegalArgumentException("size " + sizeBytes + " must be a positive multiple of 4096");
        }
        if (maxPeers < 1 || maxPeers > MAX_PEERS_MAX) {
            throw new IllegalArgumentException("max-peers " + maxPeers + " is out of range 1.." + MAX_PEERS_MAX);
        }
    }

    /** This resource's storage on {@code node}, or empty if the node does not hold it. */
    public Optional<DiskConfig> on(String node) {
        return Optional.ofNullable(on.get(node));
    }

    /** Everything but the secret, which must not reach logs. */
    @Override
    public String toString() {
        return "ResourceConfig[name=" + name + ", size=" + Sizes.format(sizeBytes) + ", protocol=" + protocol
                + ", sharedSecret=" + (sharedSecret.isPresent() ? "(set)" : "(none)") + ", autoPromote=" + autoPromote
                + ", timers=" + timers + ", resyncRate=" + Sizes.format(resyncRateBytesPerSecond) + "/s, cMaxRate="
                + Sizes.format(cMaxRateBytesPerSecond) + "/s, alExtents=" + alExtents + ", " + afterSb
                + ", maxPeers=" + maxPeers + ", on=" + on + ", onNoQuorum=" + onNoQuorum.configName() + "]";
    }
}
