package io.replstor.replicator.meta;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.replstor.common.io.BlockDevice;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.TimeUnit;

import static io.replstor.replicator.meta.MetaBlock.BLOCK_SIZE;

/**
 * Whole-block reads and writes of the metadata area, and timed syncs (fdatasync of the device
 * holding the metadata). Every sync is counted; one slower than {@link #SLOW_SYNC_NANOS} is logged,
 * because a slow metadata sync stalls every write to a cold extent.
 */
final class MetaIo {
    static final long SLOW_SYNC_NANOS = TimeUnit.SECONDS.toNanos(1);
    /** Largest single read or write: 256 blocks. */
    static final int MAX_BLOCKS_PER_IO = 256;
    private static final Logger LOG = LoggerFactory.getLogger(MetaIo.class);

    private final MetaDisk disk;
    private final BlockDevice device;
    private final MetadataCounters counters;

    MetaIo(MetaDisk disk, MetadataCounters counters) {
        this.disk = disk;
        this.device = disk.meta();
        this.counters = counters;
    }

    MetaDisk disk() {
        return disk;
    }

    MetadataCounters counters() {
        return counters;
    }

    /** Reads {@code blocks} blocks at {@code offset} into a new heap buffer. */
    ByteBuffer read(long offset, int blocks) throws IOException {
        byte[] bytes = new byte[blocks * BLOCK_SIZE];
        ByteBuf dst = Unpooled.wrappedBuffer(bytes);
        dst.writerIndex(0);
        device.read(offset, bytes.length, dst);
        return ByteBuffer.wrap(bytes);
    }

    void write(long offset, byte[] bytes, int from, int length) throws IOException {
        device.write(offset, Unpooled.wrappedBuffer(bytes, from, length), false);
    }

    void sync(String why) throws IOException {
        long start = System.nanoTime();
        device.flush();
        long took = System.nanoTime() - start;
        counters.syncs.increment();
        counters.syncNanos.add(took);
        if (took > SLOW_SYNC_NANOS) {
            counters.slowSyncs.increment();
            LOG.warn("metadata sync ({}) on {} took {} ms", why, disk.metaLocation(),
                    TimeUnit.NANOSECONDS.toMillis(took));
        }
    }
}
