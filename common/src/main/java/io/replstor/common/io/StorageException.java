package io.replstor.common.io;

import java.io.IOException;

/**
 * A failed block-device operation. The {@link Kind} is what protocol front ends map to their error
 * codes (once, in one place); the message names the device, the operation and the offset.
 */
public final class StorageException extends IOException {
    private static final long serialVersionUID = 1L;

    public enum Kind {
        /** The backing store failed (EIO). */
        IO,
        /** Out of space, quota or file-size limit (ENOSPC). */
        NO_SPACE,
        /** The device or the range is read-only (EPERM). */
        READ_ONLY,
        /** Request outside the device or otherwise malformed (EINVAL). */
        INVALID,
        /** The operation cannot be done the requested way (ENOTSUP), e.g. a fast zero. */
        NOT_SUPPORTED,
        /** The device is shutting down (ESHUTDOWN). */
        SHUTDOWN
    }

    private final Kind kind;

    public StorageException(Kind kind, String message) {
        super(message);
        this.kind = kind;
    }

    public StorageException(Kind kind, String message, Throwable cause) {
        super(message, cause);
        this.kind = kind;
    }

    public Kind kind() {
        return kind;
    }
}
