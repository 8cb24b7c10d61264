package io.replstor.replicator.engine;

import java.util.concurrent.TimeUnit;

/**
 * One application write, flush or barrier in flight to several peers: the I/O thread waits until
 * every peer it was sent to has confirmed it as its protocol asks, or has been lost (and the range
 * marked out of sync for it).
 */
final class WriteOp {
    private int outstanding;

    WriteOp(int peers) {
        this.outstanding = peers;
    }

    /** One peer confirmed (or was lost and its bitmap marked). Idempotence is the caller's job. */
    synchronized void peerDone() {
        if (--outstanding <= 0) {
            notifyAll();
        }
    }

    /** Waits for every peer; returns false if {@code maxNanos} passed first. */
    synchronized boolean await(long maxNanos) throws InterruptedException {
        long deadline = System.nanoTime() + maxNanos;
        while (outstanding > 0) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                return false;
            }
            TimeUnit.NANOSECONDS.timedWait(this, left);
        }
        return true;
    }
}
