package io.replstor.replicator.engine;

import io.replstor.replicator.meta.DirtyBitmap;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A resync target's side of a resync: it walks its bitmap for the source and keeps up to
 * {@link #MAX_OUTSTANDING} requests of at most {@link #CHUNK_BITS} blocks in flight, paced to
 * {@code c-max-rate} by a token bucket; the source answers each with RS_DATA, the applier writes it
 * and clears its bits. When no bit is left and nothing is in flight, the resource's worker finishes
 * the resync ({@link ReplicaSync#syncTargetFinished}). Bits set again meanwhile (an application
 * write that reached the source but not this node) are found by walking the bitmap again.
 *
 * <p>Runs on whichever thread moves it on (the worker when the resync starts or resumes, the applier
 * as chunks land, the event loop when the pacing delay ends); its state is guarded by this object.
 */
final class ResyncPuller {
    /** 256 KiB per request with 4 KiB blocks. */
    static final int CHUNK_BITS = 64;
    static final int MAX_OUTSTANDING = 16;
    /** Requests are not issued further ahead of the rate than this. */
    private static final long AHEAD_NANOS = 50_000_000L;

    private final Session s;
    private long cursor;
    private int outstanding;
    private boolean finishing;
    private long tokensNanos = System.nanoTime();

    ResyncPuller(Session s) {
        this.s = s;
    }

    /** The resync starts: from the first block. */
    synchronized void restart() {
        cursor = 0;
    }

    /** A requested chunk was written (applier thread). */
    void chunkArrived() {
        synchronized (this) {
            outstanding--;
        }
        pull();
    }

    /** Issues what the window and the rate allow now; schedules itself when the rate holds it back. */
    void pull() {
        if (s.failed()) {
            return;
        }
        Resource res = s.res;
        DirtyBitmap bm = res.md.bitmap();
        long g = res.granularity();
        long ratePerSec = Math.max(1, res.cfg.cMaxRateBytesPerSecond());
        int slot = s.slot;
        List<long[]> requests = new ArrayList<>();
        boolean finish = false;
        long delayNanos = 0;
        synchronized (this) {
            if (s.link.repl != ReplState.SYNC_TARGET || finishing) {
                return;
            }
            while (outstanding < MAX_OUTSTANDING) {
                long now = System.nanoTime();
                if (tokensNanos > now + AHEAD_NANOS) {
                    delayNanos = tokensNanos - now;
                    break;
                }
                long start = bm.nextDirtyBit(slot, cursor);
                if (start < 0) {
                    if (outstanding == 0) {
                        if (bm.dirtyBits(slot) == 0) {
                            finishing = true;
                            finish = true;
                        } else {
                            cursor = 0;
                            continue;
                        }
                    }
                    break;
                }
                long end = bm.nextCleanBit(slot, start);
                if (end < 0) {
                    end = bm.bits();
                }
                end = Math.min(end, start + CHUNK_BITS);
                requests.add(new long[]{start * g, (end - start) * g});
                outstanding++;
                cursor = end;
                tokensNanos = Math.max(tokensNanos, now) + (end - start) * g * 1_000_000_000L / ratePerSec;
            }
        }
        s.sendResyncRequests(requests);
        if (delayNanos > 0) {
            s.data.eventLoop().schedule(this::pull, delayNanos, TimeUnit.NANOSECONDS);
        }
        if (finish) {
            res.post(() -> res.sync.syncTargetFinished(s.link, s));
        }
    }
}
