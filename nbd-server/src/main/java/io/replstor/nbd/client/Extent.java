package io.replstor.nbd.client;

import io.replstor.nbd.Nbd;

/**
 * One {@code base:allocation} extent from a BLOCK_STATUS reply: a length (u32 on the wire, never 0) and the
 * state flags {@link Nbd#STATE_HOLE} and {@link Nbd#STATE_ZERO}. Flags 0 means "allocated, contents unknown".
 */
public record Extent(long lengthBytes, int flags) {
    public Extent {
        if (lengthBytes <= 0 || lengthBytes > 0xffffffffL) {
            throw new IllegalArgumentException("extent length must be in 1..2^32-1, got " + lengthBytes);
        }
    }

    public boolean hole() {
        return (flags & Nbd.STATE_HOLE) != 0;
    }

    public boolean zero() {
        return (flags & Nbd.STATE_ZERO) != 0;
    }
}
