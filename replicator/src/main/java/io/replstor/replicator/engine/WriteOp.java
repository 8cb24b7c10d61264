package io.replstor.replicator.engine;

import java.util.concurrent.TimeUnit;

/**
 * One application write, flush or barrier in flight to several peers: the I/O thread waits until
 * every peer it was sent to has confirmed it as its protocol asks, or has been lost (and the range
 * marked out of sync for it).
 */
final class WriteOp {
    private int outstanding;
    /** Called once when the last peer is done (asynchronous writes); null for a waiting caller. */
    private Runnable whenDone;

    WriteOp(int peers) {
        this.outstanding = peers;
    }

    /**
     * An asynchronous write: {@code action} runs once every peer is done, on the thread of the last
     * {@link #peerDone}, or right here if none is outstanding.
     */
    void whenDone(Runnable action) {
        synchronized (this) {
            if (outstanding > 0) {
                whenDone = action;
                return;
            }
        }
        action.run();
    }

    /** One peer confirmed (or was lost and its bitmap marked). Idempotence is the caller's job. */
    void peerDone() {
        Runnable action = null;
        synchronized (this) {
            if (--outstanding <= 0) {
                notifyAll();
                action = whenDone;
                whenDone = null;
            }
        }
        if (action != null) {
            action.run();
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
