package io.replstor.nbd.client;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.DefaultByteBufHolder;
import io.replstor.nbd.Nbd;

/** A decoded structured reply chunk; the payload is a retained slice of the decoder's buffer. */
final class ReplyChunk extends DefaultByteBufHolder {
    private final long cookie;
    private final int flags;
    private final int type;

    ReplyChunk(long cookie, int flags, int type, ByteBuf payload) {
        super(payload);
        this.cookie = cookie;
        this.flags = flags;
        this.type = type;
    }

    long cookie() {
        return cookie;
    }

    int flags() {
        return flags;
    }

    int type() {
        return type;
    }

    boolean done() {
        return (flags & Nbd.REPLY_FLAG_DONE) != 0;
    }

    /** Error chunk types have bit 15 set. */
    boolean isError() {
        return (type & 0x8000) != 0;
    }

    @Override
    public String toString() {
        return "ReplyChunk[cookie " + cookie + ", type " + type + ", flags " + flags + ", "
                + content().readableBytes() + " bytes]";
    }
}
