package io.replstor.nbd.client;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.DefaultByteBufHolder;
import io.replstor.nbd.Nbd;

/**
 * A decoded option reply: the echoed option, the reply type and the data (a retained slice of the
 * decoder's buffer). Whoever receives it releases it.
 */
final class OptionReply extends DefaultByteBufHolder {
    private final int option;
    private final int type;

    OptionReply(int option, int type, ByteBuf data) {
        super(data);
        this.option = option;
        this.type = type;
    }

    int option() {
        return option;
    }

    int type() {
        return type;
    }

    /** ACK or any error type: no more replies follow for this option. */
    boolean isFinal() {
        return type == Nbd.REP_ACK || isError();
    }

    boolean isError() {
        return (type & 0x80000000) != 0;
    }

    @Override
    public String toString() {
        return "OptionReply[" + Nbd.optionName(option) + ", " + NbdException.replyTypeName(type)
                + ", " + content().readableBytes() + " bytes]";
    }
}
