package io.replstor.nbd.client;

import io.netty.channel.EventLoopGroup;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollEventLoopGroup;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.util.concurrent.DefaultThreadFactory;

/** Native epoll where it loads, NIO elsewhere. */
final class Transport {
    private Transport() {
    }

    /** A group of daemon threads, so a client that is never closed does not keep the JVM alive. */
    static EventLoopGroup newGroup(int threads) {
        DefaultThreadFactory threadFactory = new DefaultThreadFactory("nbd-client", true);
        return Epoll.isAvailable()
                ? new EpollEventLoopGroup(threads, threadFactory)
                : new NioEventLoopGroup(threads, threadFactory);
    }

    static Class<? extends SocketChannel> channelClass(EventLoopGroup group) {
        if (group instanceof EpollEventLoopGroup) {
            return EpollSocketChannel.class;
        }
        if (group instanceof NioEventLoopGroup) {
            return NioSocketChannel.class;
        }
        throw new IllegalArgumentException("unsupported event loop group " + group.getClass().getName()
                + ": use an EpollEventLoopGroup or a NioEventLoopGroup");
    }
}
