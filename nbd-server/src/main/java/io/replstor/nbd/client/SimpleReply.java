package io.replstor.nbd.client;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.DefaultByteBufHolder;

/** A decoded simple reply; the data is a successful READ's payload (a retained slice), else empty. */
final class SimpleReply extends DefaultByteBufHolder {
    private final long cookie;
    private final int error;

    SimpleReply(long cookie, int error, ByteBuf data) {
        super(data);
        this.cookie = cookie;
        this.error = error;
    }

    long cookie() {
        return cookie;
    }

    int error() {
        return error;
    }

    @Override
    public String toString() {
        return "SimpleReply[cookie " + cookie + ", error " + error + ", " + content().readableBytes() + " bytes]";
    }
}
