package io.replstor.cluster.store;

import java.util.Collection;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentNavigableMap;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;

/**
 * This member's local (not replicated) lease bookkeeping, on the monotonic clock. The replicated part is
 * only each node's latest renewal sequence number ({@link StoreState#leaseSeqs()}).
 *
 * <ul>
 * <li>Own lease: each renewal's send time is kept by sequence number; when this member applies its own
 *     renewal (in log order), the lease runs until that send time + the lease timeout. Updating at
 *     apply, not at the client's reply, means a deposition committed before the renewal is applied
 *     first.</li>
 * <li>Everyone's liveness as seen here: the time this member applied each node's latest renewal. The
 *     leader deposes a Primary only when that is older than {@link StoreTimings#depositionDelay()}.
 *     A member that becomes leader cannot know older times, so it sets all of them to now
 *     ({@link #resetAll}): it waits a full delay before deposing anyone.</li>
 * </ul>
 */
final class Leases {
    private final String self;
    private final long leaseNs;
    private final LongSupplier clock;
    private final AtomicLong lastSeq;
    private final ConcurrentNavigableMap<Long, Long> sentAtNs = new ConcurrentSkipListMap<>();
    private final Map<String, Long> appliedAtNs = new ConcurrentHashMap<>();
    private volatile long validUntilNs;
    private volatile long lastValidSendNs;

    /**
     * @param members every node of the store; they count as just heard from
     * @param wallClockMicros where this incarnation's sequence numbers start: above every earlier
     *                        incarnation's (each renews at most a few times a second), unless the wall
     *                        clock went back between runs
     */
    Leases(String self, long leaseNs, LongSupplier clock, Collection<String> members, long wallClockMicros) {
        this.self = self;
        this.leaseNs = leaseNs;
        this.clock = clock;
        this.lastSeq = new AtomicLong(wallClockMicros);
        long now = clock.getAsLong();
        this.validUntilNs = now;
        this.lastValidSendNs = now;
        resetAll(members);
    }

    /** The next renewal's sequence number, its send time recorded now. */
    long nextRenewal() {
        long now = clock.getAsLong();
        // a send time older than a lease could not extend the lease any more: forget renewals that never applied
        sentAtNs.values().removeIf(t -> now - t > leaseNs);
        long seq = lastSeq.incrementAndGet();
        sentAtNs.put(seq, now);
        return seq;
    }

    /** On the apply thread, in log order: {@code node}'s renewal {@code seq} is applied. */
    void onRenewApplied(String node, long seq) {
        long now = clock.getAsLong();
        appliedAtNs.put(node, now);
        if (!node.equals(self)) {
            return;
        }
        Long sent = sentAtNs.get(seq);
        sentAtNs.headMap(seq, true).clear();
        if (sent != null && sent - lastValidSendNs >= 0) {
            lastValidSendNs = sent;
            validUntilNs = sent + leaseNs;
        }
    }

    /** This member became leader: it has not seen anyone's renewals, so everyone counts as heard from now. */
    void resetAll(Collection<String> members) {
        long now = clock.getAsLong();
        for (String m : members) {
            appliedAtNs.put(m, now);
        }
    }

    boolean valid() {
        return validUntilNs - clock.getAsLong() > 0;
    }

    /** Nanoseconds since this member applied {@code node}'s latest renewal (or since it started or led). */
    long sinceAppliedNs(String node) {
        Long at = appliedAtNs.get(node);
        return at == null ? Long.MAX_VALUE : clock.getAsLong() - at;
    }

    /** Nanoseconds this node's own lease still runs (negative: expired that long ago). */
    long remainingNs() {
        return validUntilNs - clock.getAsLong();
    }

    long now() {
        return clock.getAsLong();
    }

    static String seconds(long ns) {
        return String.format(java.util.Locale.ROOT, "%.1f s", ns / 1e9);
    }
}
