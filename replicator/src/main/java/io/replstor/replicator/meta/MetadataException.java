package io.replstor.replicator.meta;

import java.io.IOException;

/**
 * Metadata that cannot be created or used. The {@link Kind} is what callers map to exit codes and
 * disk states (once, in one place); for a damaged block, {@link #blockNumber()} and
 * {@link #offsetBytes()} say which one, and the message names the device, the block, its offset and
 * what to do.
 *
 * <p>I/O failures of the device itself are not wrapped: they arrive as the device's
 * {@link io.replstor.common.io.StorageException}.
 */
public final class MetadataException extends IOException {
    private static final long serialVersionUID = 1L;

    public enum Kind {
        /** No replstor metadata where it should be (create it with create-md). */
        NO_METADATA,
        /** create-md without force found valid metadata. */
        ALREADY_EXISTS,
        /** A block failed its checks (magic, CRC, type, content) and was not used. */
        CORRUPT,
        /** Written by a newer format version. */
        UNSUPPORTED_VERSION,
        /** Options or device sizes that do not fit (too small, too many peers, device resized). */
        INVALID
    }

    private final Kind kind;
    private final long blockNumber;
    private final long offsetBytes;

    MetadataException(Kind kind, String message) {
        this(kind, message, -1, -1);
    }

    MetadataException(Kind kind, String message, long blockNumber, long offsetBytes) {
        super(message);
        this.kind = kind;
        this.blockNumber = blockNumber;
        this.offsetBytes = offsetBytes;
    }

    public Kind kind() {
        return kind;
    }

    /**
     * The damaged block's number on the device that holds the metadata ({@link #offsetBytes()} / 4096),
     * or -1. The message also names its role ("bitmap block (peer slot 0, index 3)").
     */
    public long blockNumber() {
        return blockNumber;
    }

    /** The damaged block's byte offset on the device that holds the metadata, or -1. */
    public long offsetBytes() {
        return offsetBytes;
    }
}
