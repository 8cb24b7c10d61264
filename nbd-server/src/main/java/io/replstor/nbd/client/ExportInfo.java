package io.replstor.nbd.client;

import io.replstor.nbd.Nbd;
import java.util.Objects;

/**
 * What {@code NBD_OPT_INFO} / {@code NBD_OPT_GO} (or the {@code EXPORT_NAME} reply) said about an export.
 *
 * @param name                 the canonical name from {@code INFO_NAME}, else the name the client asked for
 * @param description          from {@code INFO_DESCRIPTION}, empty if the server sent none
 * @param sizeBytes            export size
 * @param transmissionFlags    the u16 transmission flags ({@code Nbd.TFLAG_*})
 * @param blockSizeMin         from {@code INFO_BLOCK_SIZE}, or the protocol default 1
 * @param blockSizePreferred   from {@code INFO_BLOCK_SIZE}, or the protocol default 4096
 * @param blockSizeMaxPayload  from {@code INFO_BLOCK_SIZE} (u32, 0xffffffff = no limit), or the default 32 MiB
 * @param blockSizeAdvertised  whether the server sent {@code INFO_BLOCK_SIZE} at all
 */
public record ExportInfo(String name, String description, long sizeBytes, int transmissionFlags,
                         int blockSizeMin, int blockSizePreferred, long blockSizeMaxPayload,
                         boolean blockSizeAdvertised) {
    public static final int DEFAULT_BLOCK_SIZE_MIN = 1;
    public static final int DEFAULT_BLOCK_SIZE_PREFERRED = 4096;
    public static final long DEFAULT_BLOCK_SIZE_MAX_PAYLOAD = Nbd.MAX_PAYLOAD_BYTES;

    public ExportInfo {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(description, "description");
        if (sizeBytes < 0) {
            throw new IllegalArgumentException("export size is negative (u64 over 2^63): " + sizeBytes);
        }
        if ((transmissionFlags & ~0xffff) != 0) {
            throw new IllegalArgumentException("transmission flags are a u16: " + transmissionFlags);
        }
        if (blockSizeMin <= 0 || blockSizePreferred <= 0 || blockSizeMaxPayload <= 0) {
            throw new IllegalArgumentException("block sizes must be positive: min " + blockSizeMin
                    + ", preferred " + blockSizePreferred + ", max payload " + blockSizeMaxPayload);
        }
    }

    /** Whether transmission flag {@code tflag} ({@code Nbd.TFLAG_*}) is set. */
    public boolean has(int tflag) {
        return (transmissionFlags & tflag) != 0;
    }

    public boolean readOnly() {
        return has(Nbd.TFLAG_READ_ONLY);
    }
}
