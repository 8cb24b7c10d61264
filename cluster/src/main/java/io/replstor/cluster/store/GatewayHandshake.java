package io.replstor.cluster.store;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageDecoder;
import io.netty.util.concurrent.ScheduledFuture;
import io.replstor.replicator.config.NodeConfig;
import io.replstor.replicator.net.PeerHandshake;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The raft gateway's connection handshake, run the same way by both ends before any Ratis byte passes.
 * Like the replication channel's {@code PeerHandshake} and DRBD's cram-hmac: it authenticates members
 * of the cluster to each other; it does not encrypt.
 *
 * <pre>
 * frame   := length:u16 type:u8 body            length = 1 + body length, at most {@value #FRAME_MAX}; big-endian
 * HELLO   := type 1, magic:u32 {@value #MAGIC_HEX} version:u16 auth:u8 (0 none, 1 HMAC-SHA256)
 *            node-id:u8 challenge:32 cluster-length:u8 cluster:UTF-8 node-length:u8 node:UTF-8
 * AUTH    := type 2, hmac:32 = HMAC-SHA256(shared-secret, the peer's challenge ++ the sender's node id as u32)
 * VERDICT := type 3, accepted:u8 (1 yes, 0 no) message:UTF-8 (the rest: why not)
 * </pre>
 *
 * Both send HELLO at once. On the peer's HELLO a side checks: magic and version; the same cluster name;
 * a member of its cluster file, with the file's node id, not itself (and, when it dialled, the node it
 * meant to reach); a shared secret on both sides or on neither; a challenge that is not its own (a
 * reflection would make it compute the answer to its own challenge). With a secret it sends AUTH and
 * checks the peer's in constant time; binding the node id in means an answer cannot be replayed as
 * another member's. Then it sends VERDICT; the handshake is complete when it has accepted the peer and
 * received the peer's acceptance, so neither side moves on while the other may still refuse. A refusal
 * is sent as VERDICT 0 and the connection closed.
 *
 * <p>The channel runs with AUTO_READ off: the handshake asks for reads while it runs and stops asking
 * when it completes, so bytes the peer sends after it stay in the socket (or in this decoder's buffer,
 * handed on when it is removed) until the splice is in place.
 */
final class GatewayHandshake extends ByteToMessageDecoder {
    static final int MAGIC = 0x52535247; // "RSRG"
    static final String MAGIC_HEX = "0x52535247";
    static final int VERSION = 1;
    static final int FRAME_MAX = 1024;
    static final int CHALLENGE_BYTES = 32;
    static final int HMAC_BYTES = 32;
    static final int TYPE_HELLO = 1;
    static final int TYPE_AUTH = 2;
    static final int TYPE_VERDICT = 3;
    static final int AUTH_NONE = 0;
    static final int AUTH_HMAC_SHA256 = 1;
    private static final int LENGTH_BYTES = 2;
    private static final SecureRandom RANDOM = new SecureRandom();

    /** Where the handshake's outcome goes (on the channel's event loop). */
    interface Outcome {
        /** Both sides accepted; {@code peer} is the member at the other end. */
        void onCompleted(ChannelHandlerContext ctx, GatewayHandshake handshake, NodeConfig peer);

        /**
         * This side refused the peer ({@code byPeer} false) or the peer refused this side.
         *
         * @param claimed the node the peer said it was, or null before its HELLO
         */
        void onRefused(String remote, String claimed, String message, boolean byPeer);

        /** The handshake did not finish in time (a slow or silent peer, not a refusal); the connection is closed. */
        void onTimedOut(String remote, String claimed, long timeoutMs);
    }

    private enum State { AWAIT_HELLO, AWAIT_AUTH, DONE, FAILED }

    private final StoreMembers members;
    private final NodeConfig self;
    private final byte[] secret;
    private final NodeConfig expected;
    private final long timeoutMs;
    private final Outcome outcome;
    private final byte[] myChallenge = new byte[CHALLENGE_BYTES];
    private final byte[] peerChallenge = new byte[CHALLENGE_BYTES];

    private State state = State.AWAIT_HELLO;
    private NodeConfig peer;
    private String claimed;
    private boolean acceptedPeer;
    private boolean peerAccepted;
    private String remote = "?";
    private ScheduledFuture<?> timeout;

    /**
     * @param secret   the cluster's shared secret (UTF-8), or null: membership is then checked by name only
     * @param expected the member this side dialled, or null for an accepted connection
     */
    GatewayHandshake(StoreMembers members, NodeConfig self, byte[] secret, NodeConfig expected, long timeoutMs,
                     Outcome outcome) {
        this.members = members;
        this.self = self;
        this.secret = secret;
        this.expected = expected;
        this.timeoutMs = timeoutMs;
        this.outcome = outcome;
    }

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
        if (ctx.channel().isActive()) {
            start(ctx);
        }
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) throws Exception {
        start(ctx);
        super.channelActive(ctx);
    }

    private void start(ChannelHandlerContext ctx) {
        if (timeout != null) {
            return;
        }
        remote = String.valueOf(ctx.channel().remoteAddress()).replaceFirst("^[^/]*/", "");
        RANDOM.nextBytes(myChallenge);
        timeout = ctx.executor().schedule(() -> timedOut(ctx), timeoutMs, TimeUnit.MILLISECONDS);
        ctx.writeAndFlush(hello(ctx));
        ctx.read();
    }

    @Override
    protected void handlerRemoved0(ChannelHandlerContext ctx) {
        cancelTimeout();
    }

    @Override
    protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
        while (state != State.DONE && state != State.FAILED && in.readableBytes() >= LENGTH_BYTES) {
            int length = in.getUnsignedShort(in.readerIndex());
            if (length < 1 || length > FRAME_MAX) {
                refuse(ctx, "sent a handshake frame of " + length + " bytes: not a replstor raft gateway");
                return;
            }
            if (in.readableBytes() < LENGTH_BYTES + length) {
                return;
            }
            in.skipBytes(LENGTH_BYTES);
            ByteBuf frame = in.readSlice(length);
            onFrame(ctx, frame.readUnsignedByte(), frame);
        }
    }

    /** Once complete, read nothing more until the splice takes over (ByteToMessageDecoder would ask for more). */
    @Override
    public void channelReadComplete(ChannelHandlerContext ctx) throws Exception {
        if (state == State.DONE || state == State.FAILED) {
            ctx.fireChannelReadComplete();
            return;
        }
        super.channelReadComplete(ctx); // asks for the next read: AUTO_READ is off and nothing was passed on
    }

    private void onFrame(ChannelHandlerContext ctx, int type, ByteBuf body) {
        if (type == TYPE_HELLO && state == State.AWAIT_HELLO) {
            onHello(ctx, body);
        } else if (type == TYPE_AUTH && state == State.AWAIT_AUTH && secret != null && !acceptedPeer) {
            onAuth(ctx, body);
        } else if (type == TYPE_VERDICT && state == State.AWAIT_AUTH) {
            onVerdict(ctx, body);
        } else if (type == TYPE_VERDICT && state == State.AWAIT_HELLO) {
            onVerdict(ctx, body); // refused before it read our HELLO (a timeout, a malformed frame)
        } else {
            refuse(ctx, "sent an unexpected handshake frame (type " + type + ")");
        }
    }

    private void onHello(ChannelHandlerContext ctx, ByteBuf b) {
        if (b.readableBytes() < 4 + 2 + 1 + 1 + CHALLENGE_BYTES + 2) {
            refuse(ctx, "sent a short HELLO: not a replstor raft gateway");
            return;
        }
        int magic = b.readInt();
        int version = b.readUnsignedShort();
        int auth = b.readUnsignedByte();
        int nodeId = b.readUnsignedByte();
        b.readBytes(peerChallenge);
        String cluster = string(b);
        claimed = string(b);
        String problem = check(magic, version, auth, nodeId, cluster);
        if (problem != null) {
            refuse(ctx, problem);
            return;
        }
        state = State.AWAIT_AUTH;
        if (secret != null) {
            ctx.writeAndFlush(frame(ctx, TYPE_AUTH, HMAC_BYTES).writeBytes(hmac(peerChallenge, self.id())));
        } else {
            accept(ctx);
        }
    }

    /** @return null if the HELLO is acceptable, else why not */
    private String check(int magic, int version, int auth, int nodeId, String cluster) {
        if (magic != MAGIC) {
            return "not a replstor raft gateway (magic 0x" + Integer.toHexString(magic) + ")";
        }
        if (version != VERSION) {
            return "speaks raft gateway protocol version " + version + ", this node " + VERSION + "; upgrade the older";
        }
        if (cluster == null || claimed == null) {
            return "sent a malformed HELLO";
        }
        if (!cluster.equals(members.cluster())) {
            return "belongs to cluster '" + cluster + "', not '" + members.cluster() + "'";
        }
        if (claimed.equals(self.name())) {
            return "claims to be this node";
        }
        NodeConfig n = members.nodes().get(claimed);
        if (n == null) {
            return "not a member of cluster '" + members.cluster() + "' (members: " + members.describe() + ")";
        }
        if (n.id() != nodeId) {
            return "claims node id " + nodeId + ", but the cluster file gives '" + claimed + "' id " + n.id();
        }
        if (expected != null && !expected.name().equals(claimed)) {
            return "answered where '" + expected.name() + "' should listen (raft = " + expected.raft() + ")";
        }
        if (auth != AUTH_NONE && auth != AUTH_HMAC_SHA256) {
            return "asks for unknown authentication " + auth;
        }
        if ((auth == AUTH_HMAC_SHA256) != (secret != null)) {
            return "authentication failed (shared-secret set on " + (secret != null ? "this node" : "'" + claimed + "'")
                    + " only)";
        }
        if (MessageDigest.isEqual(peerChallenge, myChallenge)) {
            return "sent back this node's own challenge (a reflection, or a connection to itself)";
        }
        peer = n;
        return null;
    }

    private void onAuth(ChannelHandlerContext ctx, ByteBuf b) {
        byte[] theirs = new byte[HMAC_BYTES];
        if (b.readableBytes() != HMAC_BYTES) {
            refuse(ctx, "sent an AUTH of " + b.readableBytes() + " bytes");
            return;
        }
        b.readBytes(theirs);
        if (!MessageDigest.isEqual(theirs, hmac(myChallenge, peer.id()))) {
            refuse(ctx, "authentication failed (shared-secret differs)");
            return;
        }
        accept(ctx);
    }

    private void accept(ChannelHandlerContext ctx) {
        acceptedPeer = true;
        ctx.writeAndFlush(frame(ctx, TYPE_VERDICT, 1).writeByte(1));
        completeIfBoth(ctx);
    }

    private void onVerdict(ChannelHandlerContext ctx, ByteBuf b) {
        boolean ok = b.isReadable() && b.readUnsignedByte() == 1;
        if (ok && peer != null && !peerAccepted) {
            peerAccepted = true;
            completeIfBoth(ctx);
            return;
        }
        String why = ok ? "accepted before the handshake was done" : b.toString(StandardCharsets.UTF_8);
        state = State.FAILED;
        cancelTimeout();
        outcome.onRefused(remote, claimed, why, !ok);
        ctx.close();
    }

    private void completeIfBoth(ChannelHandlerContext ctx) {
        if (acceptedPeer && peerAccepted && state == State.AWAIT_AUTH) {
            state = State.DONE;
            cancelTimeout();
            outcome.onCompleted(ctx, this, peer);
        }
    }

    private void timedOut(ChannelHandlerContext ctx) {
        if (state == State.DONE || state == State.FAILED) {
            return;
        }
        state = State.FAILED;
        outcome.onTimedOut(remote, claimed, timeoutMs);
        ctx.close();
    }

    private void refuse(ChannelHandlerContext ctx, String message) {
        if (state == State.DONE || state == State.FAILED) {
            return;
        }
        state = State.FAILED;
        cancelTimeout();
        outcome.onRefused(remote, claimed, message, false);
        if (ctx.channel().isActive()) {
            byte[] m = message.getBytes(StandardCharsets.UTF_8);
            int len = Math.min(m.length, FRAME_MAX - 2);
            ctx.writeAndFlush(frame(ctx, TYPE_VERDICT, 1 + len).writeByte(0).writeBytes(m, 0, len))
                    .addListener(ChannelFutureListener.CLOSE);
        } else {
            ctx.close();
        }
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        if (state == State.DONE) {
            ctx.fireExceptionCaught(cause);
            return;
        }
        state = State.FAILED;
        cancelTimeout();
        ctx.close();
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) throws Exception {
        cancelTimeout();
        super.channelInactive(ctx);
    }

    private ByteBuf hello(ChannelHandlerContext ctx) {
        byte[] cluster = members.cluster().getBytes(StandardCharsets.UTF_8);
        byte[] name = self.name().getBytes(StandardCharsets.UTF_8);
        int body = 4 + 2 + 1 + 1 + CHALLENGE_BYTES + 1 + cluster.length + 1 + name.length;
        return frame(ctx, TYPE_HELLO, body).writeInt(MAGIC).writeShort(VERSION)
                .writeByte(secret == null ? AUTH_NONE : AUTH_HMAC_SHA256).writeByte(self.id()).writeBytes(myChallenge)
                .writeByte(cluster.length).writeBytes(cluster).writeByte(name.length).writeBytes(name);
    }

    /** A frame buffer with its length and type written; the caller writes {@code bodyBytes} more. */
    private static ByteBuf frame(ChannelHandlerContext ctx, int type, int bodyBytes) {
        return ctx.alloc().buffer(LENGTH_BYTES + 1 + bodyBytes).writeShort(1 + bodyBytes).writeByte(type);
    }

    private static String string(ByteBuf b) {
        if (!b.isReadable()) {
            return null;
        }
        int len = b.readUnsignedByte();
        if (b.readableBytes() < len) {
            return null;
        }
        return b.readCharSequence(len, StandardCharsets.UTF_8).toString();
    }

    /** HMAC-SHA256(secret, challenge ++ nodeId), as the replication handshake answers a challenge. */
    private byte[] hmac(byte[] challenge, int nodeId) {
        return PeerHandshake.challengeResponse(secret, challenge, nodeId);
    }

    private void cancelTimeout() {
        if (timeout != null) {
            timeout.cancel(false);
        }
    }
}
