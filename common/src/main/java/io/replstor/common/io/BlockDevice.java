package io.replstor.common.io;

import io.netty.buffer.ByteBuf;

/**
 * A fixed-size array of bytes with block-device semantics: the seam between protocol front ends
 * (the NBD server) and storage engines (a plain file, a replicated volume).
 *
 * <p>All methods are blocking and are called from I/O worker threads, never from an event loop.
 * Implementations must be safe for concurrent calls on non-overlapping ranges; callers never issue
 * overlapping writes concurrently and expect an order (NBD gives no order either).
 *
 * <p>Durability contract (the NBD one): {@link #write} may complete before the data is durable
 * unless {@code fua}; {@link #flush} returns only when every write that completed before the call
 * began is on stable storage, whichever caller issued it.
 *
 * <p>Ranges are validated by the caller (offset + length within {@link #sizeBytes()}); a device may
 * still refuse with a {@link StorageException}.
 */
public interface BlockDevice extends AutoCloseable {

    /** Name used in messages: the export or volume name. */
    String name();

    long sizeBytes();

    boolean readOnly();

    /** Whether {@link #trim} can deallocate (punch holes); if false, trim is a no-op hint. */
    boolean canTrim();

    /** Whether zeroing a range is cheaper than writing zeroes (hole punching or ZERO_RANGE). */
    boolean canFastZero();

    /**
     * Reads {@code length} bytes at {@code offset} into {@code dst}, starting at its writer index,
     * and advances the writer index by {@code length}.
     */
    void read(long offset, int length, ByteBuf dst) throws StorageException;

    /** Writes the readable bytes of {@code src} at {@code offset}; does not change src's indexes. */
    void write(long offset, ByteBuf src, boolean fua) throws StorageException;

    void flush() throws StorageException;

    /**
     * Whether {@link #writeAsync} completes later on another thread instead of in the call (a
     * replicated volume waiting for its peers); callers then need not block a thread per write.
     */
    default boolean asyncWrites() {
        return false;
    }

    /**
     * Like {@link #write}, but {@code done} is called once the write is complete, with null or the
     * error; possibly before this returns, possibly later on another thread. {@code src} is read
     * (or retained) before this returns; the caller may release it then. If this throws, {@code done}
     * is not called.
     */
    default void writeAsync(long offset, ByteBuf src, boolean fua, WriteCompletion done) throws StorageException {
        write(offset, src, fua);
        done.completed(null);
    }

    /** Receives the end of a {@link #writeAsync}. */
    @FunctionalInterface
    interface WriteCompletion {
        /** @param error null on success */
        void completed(StorageException error);
    }

    /** Discards the range; afterwards its content is unspecified (zeroes for a file). */
    void trim(long offset, long length, boolean fua) throws StorageException;

    /**
     * Makes the range read as zeroes. {@code noHole}: the range stays allocated. {@code fastOnly}:
     * fail with {@link StorageException.Kind#NOT_SUPPORTED} rather than write zeroes slowly.
     */
    void writeZeroes(long offset, long length, boolean noHole, boolean fastOnly, boolean fua)
            throws StorageException;

    /** Read-ahead hint. */
    void cache(long offset, long length) throws StorageException;

    /**
     * Reports allocation of the range starting at {@code offset}, extent by extent, to {@code sink}
     * until the sink returns false or {@code length} bytes are covered. Extents are contiguous and
     * start at offset; the last may be cut at offset + length.
     */
    void extents(long offset, long length, ExtentSink sink) throws StorageException;

    /**
     * The first offset at or after {@code offset} that may hold data, or {@code offset + length} if
     * the whole range reads as zeroes. Must be cheap (it runs on every large read); when in doubt,
     * return {@code offset}.
     */
    default long dataStart(long offset, long length) throws StorageException {
        return offset;
    }

    @Override
    void close();

    /** Receives one extent of {@link #extents}. */
    @FunctionalInterface
    interface ExtentSink {
        /** @return true to receive the next extent */
        boolean extent(long lengthBytes, boolean hole);
    }
}
