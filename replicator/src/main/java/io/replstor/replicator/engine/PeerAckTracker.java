package io.replstor.replicator.engine;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * A Primary's peer acknowledgements (DRBD 9's P_PEER_ACK): for every barrier it sent, which peers
 * have acknowledged it (they hold every write before it on stable storage). Once every peer the
 * barrier went to has answered or is gone, each peer that acknowledged it gets a PEER_ACK naming the
 * holders, in barrier order. A Secondary forgets a write only then, and marks it for the targets
 * that do not hold it; a Secondary that loses this Primary before, marks what it still keeps for all
 * its peers (see {@link UnconfirmedWrites}). Without this, the survivors of a Primary that died with
 * writes in flight would each keep the unacknowledged writes they happened to receive, and differ.
 *
 * <p>Barriers are sent to every replicating session at once, under the join lock (write), so that
 * every write is before a barrier in every peer's stream or after it in every one. Thread-safe:
 * barriers are sent from I/O threads and the worker, acks arrive on meta event loops.
 */
final class PeerAckTracker {
    private final int selfBit;
    /** Barrier → its round; guarded by this. */
    private final TreeMap<Long, Round> rounds = new TreeMap<>();

    private static final class Round {
        final Set<Session> waiting;
        final List<Session> acked = new ArrayList<>();
        int holders;

        Round(List<Session> to, int selfBit) {
            this.waiting = new HashSet<>(to);
            this.holders = selfBit;
        }
    }

    PeerAckTracker(int selfNodeId) {
        this.selfBit = 1 << selfNodeId;
    }

    /** Barrier {@code barrier} went to {@code to} (the caller holds the join lock, write). */
    void sent(long barrier, List<Session> to) {
        if (to.isEmpty()) {
            return;
        }
        synchronized (this) {
            rounds.put(barrier, new Round(to, selfBit));
        }
    }

    /** {@code s}'s peer acknowledged {@code barrier} (meta event loop). */
    void acked(Session s, long barrier) {
        List<Runnable> sends;
        synchronized (this) {
            Round r = rounds.get(barrier);
            if (r == null || !r.waiting.remove(s)) {
                return;
            }
            r.acked.add(s);
            r.holders |= 1 << s.link.peer.id();
            sends = completed();
        }
        sends.forEach(Runnable::run);
    }

    /** {@code s} is gone: no round waits for it any more (worker). */
    void lost(Session s) {
        List<Runnable> sends;
        synchronized (this) {
            for (Round r : rounds.values()) {
                r.waiting.remove(s);
                r.acked.remove(s);
            }
            sends = completed();
        }
        sends.forEach(Runnable::run);
    }

    /** Rounds still waiting for an answer (for tests and status). */
    synchronized int pending() {
        return rounds.size();
    }

    /** The completed rounds at the head, in barrier order, as sends to run outside the lock. */
    private List<Runnable> completed() {
        List<Runnable> sends = new ArrayList<>();
        while (!rounds.isEmpty() && rounds.firstEntry().getValue().waiting.isEmpty()) {
            Map.Entry<Long, Round> e = rounds.pollFirstEntry();
            long barrier = e.getKey();
            int holders = e.getValue().holders;
            for (Session s : e.getValue().acked) {
                sends.add(() -> s.sendPeerAck(barrier, holders));
            }
        }
        return sends;
    }
}
