package io.replstor.replicator.engine;

import io.replstor.common.io.StorageException;

import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * One application write, flush or barrier in flight to several peers. It is made of parts, each
 * settled exactly once: a peer's confirmation (as its protocol asks), or, for an in-sync peer that
 * did not confirm, the committed removal of that peer from the in-sync set. The operation completes
 * when every part has settled; it fails if any part failed (the node was deposed, or it could not
 * reach the cluster store with {@code on-no-quorum io-error}): such a write is never acknowledged.
 */
final class WriteOp {
    private int outstanding;
    private StorageException error;
    /** Called once when the last part settles (asynchronous writes); null for a waiting caller. */
    private Consumer<StorageException> whenDone;

    WriteOp(int parts) {
        this.outstanding = parts;
    }

    /** Adds a part; only before {@link #whenDone} or {@link #await} is called. */
    synchronized void addPart() {
        outstanding++;
    }

    /**
     * An asynchronous write: {@code action} runs once every part has settled, with null or the first
     * error, on the thread of the last settlement, or right here if none is outstanding.
     */
    void whenDone(Consumer<StorageException> action) {
        StorageException e;
        synchronized (this) {
            if (outstanding > 0) {
                whenDone = action;
                return;
            }
            e = error;
        }
        action.accept(e);
    }

    /** One part is done: a peer confirmed, or a silent peer's removal from the in-sync set committed. */
    void peerDone() {
        settle(null);
    }

    /** One part failed: the whole operation fails (it is not acknowledged). */
    void fail(StorageException e) {
        settle(e);
    }

    private void settle(StorageException e) {
        Consumer<StorageException> action = null;
        StorageException result;
        synchronized (this) {
            if (e != null && error == null) {
                error = e;
            }
            if (--outstanding <= 0) {
                notifyAll();
                action = whenDone;
                whenDone = null;
            }
            result = error;
        }
        if (action != null) {
            action.accept(result);
        }
    }

    /**
     * Waits for every part.
     *
     * @return false if {@code maxNanos} passed first
     * @throws StorageException if a part failed
     */
    synchronized boolean await(long maxNanos) throws InterruptedException, StorageException {
        long deadline = System.nanoTime() + maxNanos;
        while (outstanding > 0) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                return false;
            }
            TimeUnit.NANOSECONDS.timedWait(this, left);
        }
        if (error != null) {
            throw error;
        }
        return true;
    }
}
