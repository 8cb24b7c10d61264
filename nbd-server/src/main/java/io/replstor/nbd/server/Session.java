package io.replstor.nbd.server;

import io.replstor.nbd.Nbd;

/**
 * What one connection negotiated during the handshake. Owned by the connection's event loop.
 */
final class Session {
    /** Context id we give base:allocation in SET_META_CONTEXT replies. */
    static final int BASE_ALLOCATION_ID = 1;

    boolean noZeroes;
    boolean tls;
    boolean structuredReplies;
    /** Export named in the last successful SET_META_CONTEXT, or null. */
    String metaContextExport;
    boolean baseAllocationSelected;

    /** STARTTLS discards everything negotiated before it. */
    void resetForTls() {
        structuredReplies = false;
        metaContextExport = null;
        baseAllocationSelected = false;
        tls = true;
    }

    /** The transmission flags for {@code export} on this connection; INFO and GO use the same. */
    int transmissionFlags(NbdExport export) {
        int flags = Nbd.TFLAG_HAS_FLAGS | Nbd.TFLAG_SEND_CACHE | Nbd.TFLAG_CAN_MULTI_CONN;
        if (structuredReplies) {
            flags |= Nbd.TFLAG_SEND_DF;
        }
        if (export.readOnly()) {
            return flags | Nbd.TFLAG_READ_ONLY;
        }
        flags |= Nbd.TFLAG_SEND_FLUSH | Nbd.TFLAG_SEND_FUA | Nbd.TFLAG_SEND_TRIM | Nbd.TFLAG_SEND_WRITE_ZEROES;
        if (export.device().canFastZero()) {
            flags |= Nbd.TFLAG_SEND_FAST_ZERO;
        }
        return flags;
    }

    boolean blockStatusAllowed(NbdExport export) {
        return baseAllocationSelected && export.name().equals(metaContextExport);
    }
}
