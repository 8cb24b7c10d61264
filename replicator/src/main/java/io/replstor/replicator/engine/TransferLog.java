package io.replstor.replicator.engine;

import io.replstor.common.io.StorageException;
import io.replstor.replicator.meta.DirtyBitmap;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;

/**
 * What a Primary has sent one peer and cannot yet forget (DRBD's transfer log), so that losing the
 * peer marks exactly what it might lack:
 * <ul>
 *   <li>writes sent and not yet written by the peer (until its WRITE_ACK or NEG_ACK);</li>
 *   <li>writes the peer wrote but has not yet flushed: a peer that loses power loses its page cache,
 *       so they are kept until a barrier after them is acknowledged;</li>
 *   <li>barriers (FLUSHes) waiting for the peer's BARRIER_ACK.</li>
 * </ul>
 * Thread-safe: writes are added from I/O threads, acks arrive on the meta channel's event loop, the
 * loss is handled on the resource's worker.
 */
final class TransferLog {
    /** Written-but-unflushed writes after which a barrier is sent without an application FLUSH. */
    static final int UNFLUSHED_MAX = 4096;

    private final Session session;
    /** Sequence → write sent and not yet written by the peer. */
    final Map<Long, Pending> unacked = new ConcurrentHashMap<>();
    private final Map<Long, WriteOp> barrierWaiters = new ConcurrentHashMap<>();
    private final Object unflushedLock = new Object();
    private List<long[]> unflushed = new ArrayList<>();
    private final NavigableMap<Long, List<long[]>> unflushedByBarrier = new TreeMap<>();

    TransferLog(Session session) {
        this.session = session;
    }

    /** A replicated write waiting for this peer. */
    static final class Pending {
        final long offset;
        final int length;
        /** The operation waiting for this peer, or null if it does not wait (a peer still joining). */
        final WriteOp op;
        final long sentNanos = System.nanoTime();
        private boolean settled;

        Pending(long offset, int length, WriteOp op) {
            this.offset = offset;
            this.length = length;
            this.op = op;
        }

        /** The peer confirmed it (or it no longer needs to: its range is marked out of sync). */
        void confirm() {
            if (settle() && op != null) {
                op.peerDone();
            }
        }

        void fail(StorageException e) {
            if (settle() && op != null) {
                op.fail(e);
            }
        }

        /** Settles when {@code removal} (the peer's removal from the in-sync set) is decided. */
        void after(CompletableFuture<Void> removal) {
            removal.whenComplete((ok, e) -> {
                if (e == null) {
                    confirm();
                } else {
                    Throwable c = e.getCause() != null && !(e instanceof StorageException) ? e.getCause() : e;
                    fail(c instanceof StorageException se ? se
                            : new StorageException(StorageException.Kind.IO, String.valueOf(c.getMessage()), c));
                }
            });
        }

        private synchronized boolean settle() {
            if (settled) {
                return false;
            }
            settled = true;
            return true;
        }
    }

    Pending sent(long seq, long offset, int length, WriteOp op) {
        Pending p = new Pending(offset, length, op);
        unacked.put(seq, p);
        return p;
    }

    /** Protocol B: the peer received it. */
    void received(long seq) {
        Pending p = unacked.get(seq);
        if (p != null) {
            p.confirm();
        }
    }

    /**
     * WRITE_ACK: the peer wrote it; it stays remembered until a barrier after it is acknowledged.
     *
     * @return true when so many writes wait for a flush that a barrier should be sent
     */
    boolean written(long seq) {
        Pending p = unacked.remove(seq);
        if (p == null) {
            return false;
        }
        p.confirm();
        synchronized (unflushedLock) {
            unflushed.add(new long[]{p.offset, p.length});
            return unflushed.size() >= UNFLUSHED_MAX;
        }
    }

    /** NEG_ACK: the peer did not write it; the caller marks it out of sync. @return it, or null */
    Pending refused(long seq) {
        return unacked.remove(seq);
    }

    /** A barrier goes out: the writes acknowledged so far are flushed once the peer acknowledges it. */
    void barrierSent(long barrier, WriteOp op) {
        if (op != null) {
            barrierWaiters.put(barrier, op);
        }
        synchronized (unflushedLock) {
            if (!unflushed.isEmpty()) {
                unflushedByBarrier.put(barrier, unflushed);
                unflushed = new ArrayList<>();
            }
        }
    }

    /** BARRIER_ACK: the peer flushed everything before {@code barrier}. */
    void barrierAcked(long barrier) {
        WriteOp op = barrierWaiters.remove(barrier);
        if (op != null) {
            op.peerDone();
        }
        synchronized (unflushedLock) {
            unflushedByBarrier.headMap(barrier, true).clear();
        }
    }

    /** The send time of the oldest write still waiting for the peer, or {@link Long#MAX_VALUE}. */
    long oldestUnackedNanos() {
        long oldest = Long.MAX_VALUE;
        for (Pending p : unacked.values()) {
            oldest = Math.min(oldest, p.sentNanos);
        }
        return oldest;
    }

    /**
     * The peer is lost: every write it did not confirm, and every write it confirmed but had not
     * flushed, is marked in its bitmap slot. The caller holds the join lock (write).
     *
     * @return the number of ranges marked
     */
    int markUnconfirmed(DirtyBitmap bm, int slot) {
        int n = 0;
        for (Pending p : unacked.values()) {
            bm.set(slot, p.offset, p.length);
            n++;
        }
        synchronized (unflushedLock) {
            for (long[] r : unflushed) {
                bm.set(slot, r[0], r[1]);
                n++;
            }
            for (List<long[]> l : unflushedByBarrier.values()) {
                for (long[] r : l) {
                    bm.set(slot, r[0], r[1]);
                    n++;
                }
            }
            unflushed.clear();
            unflushedByBarrier.clear();
        }
        return n;
    }

    /**
     * After the loss (the caller marked the bitmap): every unconfirmed write and barrier settles. If the
     * peer is in the in-sync set they wait for its committed removal first (rule 2 of DESIGN §5);
     * otherwise they complete now.
     */
    void settleWaiters(String why) {
        InSyncGate gate = session.res.gate;
        String peer = session.link.name();
        for (Pending p : unacked.values()) {
            settleUnconfirmed(p, why);
        }
        unacked.clear();
        CompletableFuture<Void> removal = !barrierWaiters.isEmpty() && gate.guards(peer)
                ? gate.removal(peer, why) : null;
        for (WriteOp op : barrierWaiters.values()) {
            Pending p = new Pending(0, 0, op);
            if (removal == null) {
                p.confirm();
            } else {
                p.after(removal);
            }
        }
        barrierWaiters.clear();
    }

    /** A write the peer did not confirm: done now, or once the peer is out of the in-sync set. */
    void settleUnconfirmed(Pending p, String why) {
        InSyncGate gate = session.res.gate;
        String peer = session.link.name();
        if (gate.guards(peer)) {
            p.after(gate.removal(peer, why));
        } else {
            p.confirm();
        }
    }

    /** This node was deposed: every write still waiting for this peer fails (it is never acknowledged). */
    void failWaiters(StorageException e) {
        for (Pending p : unacked.values()) {
            p.fail(e);
        }
        // removed as they fail: a later settlement must not count them again
        barrierWaiters.values().removeIf(op -> {
            op.fail(e);
            return true;
        });
    }
}
