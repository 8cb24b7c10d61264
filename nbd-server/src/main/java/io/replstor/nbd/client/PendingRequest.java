package io.replstor.nbd.client;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.replstor.nbd.Nbd;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CompletableFuture;

/**
 * One request in flight, owned by the event loop from submission to completion. A simple reply completes it at
 * once; structured chunks accumulate until the chunk flagged DONE, then {@link #finish} completes it. Error
 * chunks (type bit 15 set) carry:
 *
 * <pre>
 * ERROR          errno u32 | message length u16 | message (UTF-8)
 * ERROR_OFFSET   errno u32 | message length u16 | message | offset u64
 * </pre>
 *
 * The first error wins. A malformed chunk whose framing was intact fails only this request
 * ({@link NbdException.Kind#PROTOCOL_VIOLATION}); the connection stays usable.
 */
abstract class PendingRequest {
    private static final int ERROR_HEADER_BYTES = 6;
    private static final int ERROR_OFFSET_BYTES = 8;

    final String where;
    final int type;
    final int flags;
    final long offset;
    /** The u32 length field of the request; for WRITE the payload size. */
    final long length;
    long cookie;
    private int errno;
    private String serverMessage = "";
    private String violation;

    PendingRequest(String where, int type, int flags, long offset, long length) {
        this.where = where;
        this.type = type;
        this.flags = flags;
        this.offset = offset;
        this.length = length;
    }

    abstract CompletableFuture<?> future();

    /** A simple reply with error 0; {@code data} is a READ's payload (retain it to keep it), else empty. */
    abstract void onSimpleSuccess(ByteBuf data);

    /** A chunk that is neither an error nor NONE. */
    abstract void onContentChunk(int chunkType, ByteBuf payload);

    /** All chunks are in and none was an error or malformed. */
    abstract void complete(ByteBufAllocator alloc);

    /** Releases whatever the request holds and completes its future exceptionally. */
    abstract void fail(Throwable cause);

    /** Takes ownership of {@code reply} and completes the request. */
    final void onSimpleReply(SimpleReply reply) {
        try {
            if (reply.error() != 0) {
                fail(NbdException.errorReply(describe(), where, reply.error(), ""));
            } else {
                onSimpleSuccess(reply.content());
            }
        } finally {
            reply.release();
        }
    }

    /** Takes ownership of {@code chunk}; the caller calls {@link #finish} after the DONE chunk. */
    final void onChunk(ReplyChunk chunk) {
        try {
            if (chunk.isError()) {
                onErrorChunk(chunk.type(), chunk.content());
            } else if (chunk.type() == Nbd.REPLY_TYPE_NONE) {
                if (!chunk.done() || chunk.content().isReadable()) {
                    violation("a NONE chunk that is not empty and final");
                }
            } else {
                onContentChunk(chunk.type(), chunk.content());
            }
        } finally {
            chunk.release();
        }
    }

    final void finish(ByteBufAllocator alloc) {
        if (errno != 0) {
            fail(NbdException.errorReply(describe(), where, errno, serverMessage));
        } else if (violation != null) {
            failViolation(violation);
        } else {
            complete(alloc);
        }
    }

    private void onErrorChunk(int chunkType, ByteBuf payload) {
        if (payload.readableBytes() < ERROR_HEADER_BYTES) {
            violation("an error chunk of " + payload.readableBytes() + " bytes");
            return;
        }
        int error = payload.readInt();
        int messageLength = payload.readUnsignedShort();
        if (messageLength > payload.readableBytes()) {
            violation("an error chunk whose message length " + messageLength + " exceeds its payload");
            return;
        }
        String message = payload.readCharSequence(messageLength, StandardCharsets.UTF_8).toString();
        if (chunkType == Nbd.REPLY_TYPE_ERROR_OFFSET) {
            if (payload.readableBytes() != ERROR_OFFSET_BYTES) {
                violation("an ERROR_OFFSET chunk without its 8-byte offset");
                return;
            }
            message = message + (message.isEmpty() ? "" : " ") + "(at offset " + payload.readLong() + ")";
        }
        if (error == 0) {
            violation("an error chunk with error 0");
        } else if (errno == 0) {
            errno = error;
            serverMessage = message;
        }
    }

    /** Records the first protocol violation; the request fails with it when DONE arrives. */
    final void violation(String what) {
        if (violation == null) {
            violation = what;
        }
    }

    final void failViolation(String what) {
        fail(new NbdException(NbdException.Kind.PROTOCOL_VIOLATION, where + " answered " + describe() + " with "
                + what));
    }

    final String describe() {
        return Nbd.commandName(type) + " offset " + offset + " length " + length
                + (flags == 0 ? "" : " flags 0x" + Integer.toHexString(flags));
    }
}
