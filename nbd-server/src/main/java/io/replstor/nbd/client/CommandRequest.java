package io.replstor.nbd.client;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import java.util.concurrent.CompletableFuture;

/** A request whose only answer is success or an error: WRITE, FLUSH, TRIM, CACHE, WRITE_ZEROES. */
final class CommandRequest extends PendingRequest {
    private final CompletableFuture<Void> future = new CompletableFuture<>();

    CommandRequest(String where, int type, int flags, long offset, long length) {
        super(where, type, flags, offset, length);
    }

    @Override
    CompletableFuture<Void> future() {
        return future;
    }

    @Override
    void onSimpleSuccess(ByteBuf data) {
        future.complete(null);
    }

    @Override
    void onContentChunk(int chunkType, ByteBuf payload) {
        violation("a chunk of type " + chunkType);
    }

    @Override
    void complete(ByteBufAllocator alloc) {
        future.complete(null);
    }

    @Override
    void fail(Throwable cause) {
        future.completeExceptionally(cause);
    }
}
