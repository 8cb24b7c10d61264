package io.replstor.cluster.store;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufInputStream;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.util.ReferenceCountUtil;
import org.apache.ratis.proto.RaftProtos.RaftRpcReplyProto;
import org.apache.ratis.proto.RaftProtos.RaftRpcRequestProto;
import org.apache.ratis.proto.netty.NettyProtos.RaftNettyExceptionReplyProto;
import org.apache.ratis.proto.netty.NettyProtos.RaftNettyServerReplyProto;
import org.apache.ratis.proto.netty.NettyProtos.RaftNettyServerRequestProto;
import org.apache.ratis.thirdparty.com.google.protobuf.Descriptors;
import org.apache.ratis.thirdparty.com.google.protobuf.Message;
import org.apache.ratis.util.ProtoUtils;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.net.ConnectException;

/**
 * Answers every request this node's Ratis sends on a connection to a member the gateway cannot reach
 * (not dialled, refused, or gone) with an error reply: a {@link ConnectException} naming the member. Ratis
 * then closes the connection itself and dials again for its next request.
 *
 * <p>Why not close the connection: Ratis 3.3.0's NettyRpcProxy stalls 5 s when a connection closes under
 * a request it is writing (the failed write wakes the request's thread, which closes the connection
 * while holding the connection's lock and waits for the event loop; the loop, about to run
 * channelInactive, waits for the same lock). Why not leave it open and unanswered: an election
 * interrupts its vote requests before they time out, and Ratis replaces a connection only after a
 * failure or a timeout, so a dead member, back again, would never be reached on it.
 *
 * <p>Sits after {@link RatisFrameDecoder}: each message is one whole frame, released here.
 */
final class UnreachableMember extends ChannelInboundHandlerAdapter {
    private static final Logger LOG = LoggerFactory.getLogger(UnreachableMember.class);

    private final ConnectException why;

    private UnreachableMember(String why) {
        this.why = new ConnectException(why);
        this.why.setStackTrace(new StackTraceElement[0]); // it travels to Ratis serialized: keep it small
    }

    /**
     * Makes {@code ratis} (this node's Ratis connection, framed by {@link RatisFrameDecoder}) answer its
     * requests with {@code why}; call on its event loop.
     */
    static void install(Channel ratis, String why) {
        if (!ratis.isOpen() || ratis.pipeline().get(UnreachableMember.class) != null) {
            return;
        }
        if (ratis.pipeline().get(Splice.class) != null) {
            ratis.pipeline().remove(Splice.class);
        }
        ratis.pipeline().addLast(new UnreachableMember(why));
        ratis.read();
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        try {
            answer(ctx, (ByteBuf) msg);
        } finally {
            ReferenceCountUtil.release(msg);
        }
    }

    @Override
    public void channelReadComplete(ChannelHandlerContext ctx) {
        ctx.flush();
        ctx.read();
    }

    private void answer(ChannelHandlerContext ctx, ByteBuf frame) {
        RatisFrameDecoder.readVarint32(frame);
        RaftRpcRequestProto request;
        try {
            request = rpcRequestOf(RaftNettyServerRequestProto.parseFrom(new ByteBufInputStream(frame)));
        } catch (IOException e) {
            LOG.debug("raft gateway: unreadable Ratis request: {}", e.toString());
            return; // Ratis' attempt times out and it closes the connection
        }
        if (request == null) {
            return;
        }
        RaftRpcReplyProto rpcReply = RaftRpcReplyProto.newBuilder().setRequestorId(request.getRequestorId())
                .setReplyId(request.getReplyId()).setCallId(request.getCallId()).setSuccess(false).build();
        byte[] reply = RaftNettyServerReplyProto.newBuilder().setExceptionReply(RaftNettyExceptionReplyProto
                .newBuilder().setRpcReply(rpcReply).setException(ProtoUtils.writeObject2ByteString(why)))
                .build().toByteArray();
        ByteBuf out = ctx.alloc().buffer(5 + reply.length);
        RatisFrameDecoder.writeVarint32(out, reply.length);
        ctx.write(out.writeBytes(reply));
    }

    /** The RaftRpcRequestProto inside whichever request this is (every kind carries exactly one). */
    private static RaftRpcRequestProto rpcRequestOf(RaftNettyServerRequestProto proto) {
        Descriptors.FieldDescriptor set = proto.getOneofFieldDescriptor(proto.getDescriptorForType().getOneofs().get(0));
        if (set == null) {
            return null;
        }
        Message inner = (Message) proto.getField(set);
        for (Descriptors.FieldDescriptor f : inner.getDescriptorForType().getFields()) {
            if (f.getJavaType() == Descriptors.FieldDescriptor.JavaType.MESSAGE
                    && f.getMessageType().equals(RaftRpcRequestProto.getDescriptor())) {
                return (RaftRpcRequestProto) inner.getField(f);
            }
        }
        return null;
    }

    /** Only a bug makes Ratis' own frames unreadable: then closing is the lesser evil. */
    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        LOG.warn("raft gateway: this node's Ratis connection failed: {}", cause.toString());
        ctx.close();
    }
}
