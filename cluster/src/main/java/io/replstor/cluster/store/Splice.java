package io.replstor.cluster.store;

import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;

/**
 * One direction of a spliced pair of channels: what this channel reads is written to {@code other}.
 * Both channels run with AUTO_READ off; this side reads again only while {@code other} is writable, and
 * {@code other}'s handler resumes it when {@code other} drains, so at most a write-buffer's worth is
 * held in memory. A buffer read here is handed to {@code other}'s write, which releases it (also when
 * the write fails, and then this side stops reading: a closed channel is not writable).
 */
final class Splice extends ChannelInboundHandlerAdapter {
    private final Channel other;
    private final boolean closesOther;

    private Splice(Channel other, boolean closesOther) {
        this.other = other;
        this.closesOther = closesOther;
    }

    /** Both directions; when either channel closes, the other is flushed and closed. */
    static void join(Channel a, Channel b) {
        install(a, new Splice(b, true), b, new Splice(a, true));
    }

    /**
     * Both directions between this node's Ratis connection (framed by {@link RatisFrameDecoder}) and a
     * member; when the member's side closes, the Ratis side is left to its owner (the gateway then answers
     * it with {@link UnreachableMember}).
     */
    static void joinRatis(Channel ratis, Channel member) {
        install(ratis, new Splice(member, true), member, new Splice(ratis, false));
    }

    private static void install(Channel a, Splice fromA, Channel b, Splice fromB) {
        a.pipeline().addLast("splice", fromA);
        b.pipeline().addLast("splice", fromB);
        a.read();
        b.read();
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        other.write(msg, other.voidPromise());
    }

    @Override
    public void channelReadComplete(ChannelHandlerContext ctx) {
        other.flush();
        if (other.isWritable()) {
            ctx.read();
        }
    }

    /** This channel drained: the other side may read again. */
    @Override
    public void channelWritabilityChanged(ChannelHandlerContext ctx) {
        if (ctx.channel().isWritable()) {
            other.read();
        }
        ctx.fireChannelWritabilityChanged();
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        if (closesOther) {
            closeOnFlush(other);
        }
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        ctx.close();
    }

    static void closeOnFlush(Channel ch) {
        if (ch.isActive()) {
            ch.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(ChannelFutureListener.CLOSE);
        } else {
            ch.close();
        }
    }
}
