package io.replstor.replicator.engine;

import java.util.concurrent.locks.ReentrantLock;

/**
 * Striped locks over byte ranges: an application write holds the stripes of its range while it
 * writes locally and queues the write to its peers, and a resync source holds them while it reads
 * a chunk and queues it. So on the wire the newer of the two always follows the older, and the
 * target, which applies frames in order, ends with the newer data.
 */
final class RangeLocks {
    private static final int STRIPE_SHIFT = 22; // 4 MiB
    private static final int STRIPES = 256;
    private final ReentrantLock[] locks = new ReentrantLock[STRIPES];

    RangeLocks() {
        for (int i = 0; i < STRIPES; i++) {
            locks[i] = new ReentrantLock();
        }
    }

    /** Locks the stripes of the range in ascending stripe order (no deadlock between ranges). */
    void lock(long offset, long length) {
        long first = offset >>> STRIPE_SHIFT;
        long last = (offset + Math.max(length, 1) - 1) >>> STRIPE_SHIFT;
        if (last - first + 1 >= STRIPES) {
            for (ReentrantLock l : locks) {
                l.lock();
            }
            return;
        }
        boolean[] take = new boolean[STRIPES];
        for (long e = first; e <= last; e++) {
            take[(int) (e % STRIPES)] = true;
        }
        for (int i = 0; i < STRIPES; i++) {
            if (take[i]) {
                locks[i].lock();
            }
        }
    }

    void unlock(long offset, long length) {
        long first = offset >>> STRIPE_SHIFT;
        long last = (offset + Math.max(length, 1) - 1) >>> STRIPE_SHIFT;
        if (last - first + 1 >= STRIPES) {
            for (ReentrantLock l : locks) {
                l.unlock();
            }
            return;
        }
        boolean[] take = new boolean[STRIPES];
        for (long e = first; e <= last; e++) {
            take[(int) (e % STRIPES)] = true;
        }
        for (int i = STRIPES - 1; i >= 0; i--) {
            if (take[i]) {
                locks[i].unlock();
            }
        }
    }
}
