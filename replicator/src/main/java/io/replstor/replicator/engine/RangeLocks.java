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
        int[] r = stripes(offset, length);
        for (int i = r[0]; i <= r[1]; i++) {
            locks[i].lock();
        }
        for (int i = r[2]; i <= r[3]; i++) {
            locks[i].lock();
        }
    }

    void unlock(long offset, long length) {
        int[] r = stripes(offset, length);
        for (int i = r[3]; i >= r[2]; i--) {
            locks[i].unlock();
        }
        for (int i = r[1]; i >= r[0]; i--) {
            locks[i].unlock();
        }
    }

    /**
     * The stripes of the range as two ascending index runs {@code [a0, a1]} and {@code [b0, b1]}
     * (the second empty unless the range wraps around the stripe table).
     */
    private static int[] stripes(long offset, long length) {
        long first = offset >>> STRIPE_SHIFT;
        long last = (offset + Math.max(length, 1) - 1) >>> STRIPE_SHIFT;
        if (last - first + 1 >= STRIPES) {
            return new int[]{0, STRIPES - 1, 0, -1};
        }
        int a = (int) (first % STRIPES);
        int b = (int) (last % STRIPES);
        return a <= b ? new int[]{a, b, 0, -1} : new int[]{0, b, a, STRIPES - 1};
    }
}
