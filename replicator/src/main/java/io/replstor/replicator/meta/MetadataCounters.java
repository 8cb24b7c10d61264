package io.replstor.replicator.meta;

import java.util.concurrent.atomic.LongAdder;

/** What the metadata layer wrote and how long its syncs took; read by {@code /metrics}. */
public final class MetadataCounters {
    final LongAdder superblockCommits = new LongAdder();
    final LongAdder alTransactions = new LongAdder();
    final LongAdder alEvictions = new LongAdder();
    final LongAdder bitmapBlocksWritten = new LongAdder();
    final LongAdder syncs = new LongAdder();
    final LongAdder syncNanos = new LongAdder();
    final LongAdder slowSyncs = new LongAdder();

    public long superblockCommits() {
        return superblockCommits.sum();
    }

    public long alTransactions() {
        return alTransactions.sum();
    }

    public long alEvictions() {
        return alEvictions.sum();
    }

    public long bitmapBlocksWritten() {
        return bitmapBlocksWritten.sum();
    }

    public long syncs() {
        return syncs.sum();
    }

    public long syncNanos() {
        return syncNanos.sum();
    }

    /** Syncs slower than {@link MetaIo#SLOW_SYNC_NANOS}; each one is also logged. */
    public long slowSyncs() {
        return slowSyncs.sum();
    }
}
