package io.replstor.nbd.client;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.replstor.nbd.Nbd;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * BLOCK_STATUS for {@code base:allocation}. The reply has one chunk per selected context:
 *
 * <pre>
 * BLOCK_STATUS chunk   context id u32 | (extent length u32 | state flags u32) * n, n >= 1
 * </pre>
 *
 * Chunks for other contexts are skipped. The request is still sent when {@code base:allocation} was not
 * negotiated (a server should answer EINVAL); a successful answer then counts as a protocol violation.
 */
final class BlockStatusRequest extends PendingRequest {
    private static final int CONTEXT_ID_BYTES = 4;
    private static final int EXTENT_BYTES = 8;

    private final CompletableFuture<List<Extent>> future = new CompletableFuture<>();
    private final boolean contextSelected;
    private final int contextId;
    private List<Extent> extents;

    BlockStatusRequest(String where, int flags, long offset, long length, boolean contextSelected, int contextId) {
        super(where, Nbd.CMD_BLOCK_STATUS, flags, offset, length);
        this.contextSelected = contextSelected;
        this.contextId = contextId;
    }

    @Override
    CompletableFuture<List<Extent>> future() {
        return future;
    }

    @Override
    void onSimpleSuccess(ByteBuf data) {
        failViolation("a successful simple reply, which cannot carry extents");
    }

    @Override
    void onContentChunk(int chunkType, ByteBuf payload) {
        int bytes = payload.readableBytes();
        if (chunkType != Nbd.REPLY_TYPE_BLOCK_STATUS) {
            violation("a chunk of type " + chunkType);
        } else if (bytes < CONTEXT_ID_BYTES + EXTENT_BYTES || (bytes - CONTEXT_ID_BYTES) % EXTENT_BYTES != 0) {
            violation("a BLOCK_STATUS chunk of " + bytes + " bytes (must be 4 + 8n, n >= 1)");
        } else if (!contextSelected) {
            violation("a BLOCK_STATUS chunk although base:allocation was not negotiated");
        } else if (payload.readInt() == contextId) {
            if (extents != null) {
                violation("two BLOCK_STATUS chunks for base:allocation");
                return;
            }
            extents = parseExtents(payload);
        }
    }

    private List<Extent> parseExtents(ByteBuf payload) {
        List<Extent> parsed = new ArrayList<>(payload.readableBytes() / EXTENT_BYTES);
        while (payload.isReadable()) {
            long extentLength = payload.readUnsignedInt();
            int state = payload.readInt();
            if (extentLength == 0) {
                violation("an extent of length 0");
                return parsed;
            }
            parsed.add(new Extent(extentLength, state));
        }
        return Collections.unmodifiableList(parsed);
    }

    @Override
    void complete(ByteBufAllocator alloc) {
        if (extents == null) {
            failViolation("no BLOCK_STATUS chunk for base:allocation (context id " + contextId + ")");
        } else {
            future.complete(extents);
        }
    }

    @Override
    void fail(Throwable cause) {
        future.completeExceptionally(cause);
    }
}
