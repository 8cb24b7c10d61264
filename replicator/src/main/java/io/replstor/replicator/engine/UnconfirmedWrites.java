package io.replstor.replicator.engine;

import java.util.ArrayDeque;
import java.util.Arrays;

/**
 * A replica's record of the writes it received from a Primary that no peer acknowledgement has yet
 * shown on every target (see {@link PeerAckTracker}). The writes are kept in segments, one per
 * barrier interval of the Primary's stream; a PEER_ACK for barrier {@code b} settles every segment up
 * to {@code b}: each write is marked out of sync for its targets that are not holders, and forgotten.
 * When the Primary is lost, whatever is still kept is handed to {@link ReplicaSync#primaryLost}, which
 * marks it for every peer.
 *
 * <p>Applier thread only, except {@link #drain}, which runs on the worker after the applier stopped.
 */
final class UnconfirmedWrites {
    /** Where a write that a node does not hold gets marked: the node-id bits that lack it, and the range. */
    interface Marker {
        void mark(int missing, long offset, int length);
    }

    private final ArrayDeque<Segment> closed = new ArrayDeque<>();
    private Segment open = new Segment();
    private long count;

    /** Writes of one barrier interval: offset, then length and targets, per write. */
    private static final class Segment {
        long barrier = -1;
        long[] writes = new long[32];
        int size;

        void add(long offset, int length, int targets) {
            if (size + 2 > writes.length) {
                writes = Arrays.copyOf(writes, writes.length * 2);
            }
            writes[size++] = offset;
            writes[size++] = ((long) length << 32) | (targets & 0xFFFFFFFFL);
        }

        void forEach(Marker m, int notHolding) {
            for (int i = 0; i < size; i += 2) {
                int targets = (int) writes[i + 1];
                int missing = targets & notHolding;
                if (missing != 0) {
                    m.mark(missing, writes[i], (int) (writes[i + 1] >>> 32));
                }
            }
        }
    }

    /** A write from the Primary was applied (or failed here: conservative either way). */
    void add(long offset, int length, int targets) {
        open.add(offset, length, targets);
        count++;
    }

    /** The Primary's barrier {@code barrier} was applied: the writes since the last one form its segment. */
    void barrier(long barrier) {
        if (open.size == 0) {
            return;
        }
        open.barrier = barrier;
        closed.add(open);
        open = new Segment();
    }

    /**
     * PEER_ACK: every write before {@code barrier} is on the nodes in {@code holders}; the others among
     * each write's targets lack it.
     */
    void settle(long barrier, int holders, Marker marker) {
        while (!closed.isEmpty() && closed.peekFirst().barrier <= barrier) {
            Segment s = closed.pollFirst();
            s.forEach(marker, ~holders);
            count -= s.size / 2;
        }
    }

    /** The Primary is gone: every write still kept, for every node. @return how many */
    long drain(Marker marker) {
        long n = count;
        for (Segment s : closed) {
            s.forEach(marker, -1);
        }
        open.forEach(marker, -1);
        closed.clear();
        open = new Segment();
        count = 0;
        return n;
    }

    long count() {
        return count;
    }
}
