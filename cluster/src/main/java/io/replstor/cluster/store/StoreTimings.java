package io.replstor.cluster.store;

import java.time.Duration;
import java.util.Objects;

/**
 * The cluster store's timing and sizing, all derived from the cluster's {@code lease-timeout} unless a
 * test shortens them.
 *
 * @param leaseTimeout       how long a node's liveness lease lasts after the renewal that extended it was sent
 * @param renewInterval      how often a node commits a renewal of its lease (a quarter of the lease)
 * @param electionTimeoutMin Raft election timeout, lower bound (the upper bound is twice it): small enough that a
 *                           new leader exists well within one lease
 * @param requestTimeout     how long a role or in-sync request may take before it fails with NO_QUORUM
 * @param quorumCheckInterval how often quorum is re-evaluated for {@code watchQuorum}
 * @param snapshotThreshold  applied entries between automatic snapshots (the log is purged up to each one)
 * @param logSegmentBytes    Raft log segment size: only closed segments can be purged after a snapshot
 */
public record StoreTimings(Duration leaseTimeout, Duration renewInterval, Duration electionTimeoutMin,
                           Duration requestTimeout, Duration quorumCheckInterval, long snapshotThreshold,
                           long logSegmentBytes) {

    /** Never less: a Raft round trip plus an fsync must fit several times into one election timeout. */
    public static final Duration ELECTION_TIMEOUT_FLOOR = Duration.ofMillis(300);
    public static final long SNAPSHOT_THRESHOLD_DEFAULT = 2048;
    public static final long LOG_SEGMENT_BYTES_DEFAULT = 1L << 20;

    public StoreTimings {
        Objects.requireNonNull(leaseTimeout, "leaseTimeout");
        Objects.requireNonNull(renewInterval, "renewInterval");
        Objects.requireNonNull(electionTimeoutMin, "electionTimeoutMin");
        Objects.requireNonNull(requestTimeout, "requestTimeout");
        Objects.requireNonNull(quorumCheckInterval, "quorumCheckInterval");
        if (renewInterval.compareTo(leaseTimeout) >= 0) {
            throw new IllegalArgumentException("renew interval " + renewInterval.toMillis() + " ms must be shorter than"
                    + " the lease timeout " + leaseTimeout.toMillis() + " ms");
        }
        Duration electionMax = electionTimeoutMin.multipliedBy(2); // the fields are not assigned yet
        if (electionMax.compareTo(leaseTimeout) >= 0) {
            throw new IllegalArgumentException("election timeout " + electionTimeoutMin.toMillis() + ".."
                    + electionMax.toMillis() + " ms must be shorter than the lease timeout "
                    + leaseTimeout.toMillis() + " ms: a new leader must exist before leases run out");
        }
        if (snapshotThreshold < 1 || logSegmentBytes < 4096) {
            throw new IllegalArgumentException("snapshot threshold " + snapshotThreshold + " < 1 or log segment "
                    + logSegmentBytes + " bytes < 4096");
        }
    }

    /** Everything from the lease timeout: renew every quarter lease, elections in max(300 ms, lease/6)..twice that. */
    public static StoreTimings fromLease(Duration leaseTimeout) {
        Duration election = leaseTimeout.dividedBy(6);
        if (election.compareTo(ELECTION_TIMEOUT_FLOOR) < 0) {
            election = ELECTION_TIMEOUT_FLOOR;
        }
        return new StoreTimings(leaseTimeout, leaseTimeout.dividedBy(4), election, leaseTimeout.multipliedBy(2),
                Duration.ofMillis(100), SNAPSHOT_THRESHOLD_DEFAULT, LOG_SEGMENT_BYTES_DEFAULT);
    }

    public Duration electionTimeoutMax() {
        return electionTimeoutMin.multipliedBy(2);
    }

    /**
     * How long after a Primary's last renewal was applied on the leader the leader may depose it: the lease,
     * plus a tenth for clock-rate differences between the two machines, plus 100 ms for scheduling.
     */
    public Duration depositionDelay() {
        return leaseTimeout.plus(leaseTimeout.dividedBy(10)).plusMillis(100);
    }

    /**
     * One Ratis RPC attempt (client request, or server to server): longer than a leader that lost its
     * majority holds a request before it steps down and answers (an election timeout), so only a member
     * that stopped answering on an open connection makes an attempt time out (one the gateway cannot
     * reach fails at once, see {@link UnreachableMember}).
     */
    public Duration attemptTimeout() {
        Duration twoElections = electionTimeoutMax().multipliedBy(2);
        Duration half = leaseTimeout.dividedBy(2);
        return half.compareTo(twoElections) > 0 ? half : twoElections;
    }

    /** A linearizable read's wait for the leader's read index: within one attempt. */
    public Duration readTimeout() {
        return attemptTimeout().dividedBy(2);
    }

    /** The raft gateway's dial and its handshake towards a member, each. */
    public Duration gatewayConnectTimeout() {
        return attemptTimeout().dividedBy(2);
    }

    public StoreTimings withSnapshots(long threshold, long segmentBytes) {
        return new StoreTimings(leaseTimeout, renewInterval, electionTimeoutMin, requestTimeout, quorumCheckInterval,
                threshold, segmentBytes);
    }
}
