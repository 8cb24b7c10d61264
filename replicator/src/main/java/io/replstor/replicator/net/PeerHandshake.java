package io.replstor.replicator.net;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.ScheduledFuture;
import io.replstor.common.Sizes;
import io.replstor.replicator.config.ReplicationProtocol;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * The connection handshake of the peer protocol. Both ends run it the same way, except that the end
 * that accepted the connection answers the challenge only after the dialler has (step 3); it sits
 * right after the {@link PeerFrameDecoder} and leaves the pipeline once it has succeeded.
 *
 * <ol>
 * <li>On activation, send HELLO: version range, node id, resource, volume size, replication
 *     protocol, whether a shared secret is configured, and a fresh 64-byte challenge from
 *     {@link SecureRandom}.</li>
 * <li>On the peer's HELLO, refuse unless: the version ranges overlap; the peer's node id is the one
 *     expected on this connection and not this node's own; resource name, volume size and protocol
 *     are equal; both or neither have a shared secret; and the peer's challenge is not this node's
 *     own (a reflection: an attacker who sends our challenge back would get us to compute the answer
 *     to it).</li>
 * <li>With secrets, answer with AUTH_RESPONSE = HMAC-SHA256(secret, peer's challenge ++ my node id
 *     as u32) and check the peer's answer to our challenge in constant time; binding the node id in
 *     means a response cannot be replayed as another node's. The dialler answers at once; the end
 *     that accepted the connection answers only once the dialler's answer checked out. Otherwise
 *     anyone who can reach both nodes could relay: connect to beta claiming to be alpha, connect to
 *     alpha claiming to be beta and present beta's challenge there, and alpha's answer (bound to
 *     alpha's own id, just as beta expects from alpha) would authenticate the stranger to beta as
 *     alpha. A node answers first only on connections it dialled itself, to its configured peer.
 *     Without secrets this step is skipped.</li>
 * <li>Once this side accepts the peer, it sends AUTH_OK. When it has both accepted the peer and
 *     received the peer's AUTH_OK, it fires {@link Completed} and removes itself; frames after that
 *     go to the next handler. So neither side moves on while the other may still refuse.</li>
 * </ol>
 * Any failure fires {@link Refused} (logged with the same message on both sides, since the checks
 * are symmetric and messages name both nodes), sends REFUSE with the reason and message unless it
 * was the peer who refused, and closes the connection. The whole exchange must finish within the
 * configured timeout. Frames this handler consumes are released here.
 */
public final class PeerHandshake extends ChannelInboundHandlerAdapter {
    private static final Logger LOG = LoggerFactory.getLogger(PeerHandshake.class);
    public static final String HMAC_ALGORITHM = "HmacSHA256";

    /** The handshake succeeded; the connection is ready for the UUID exchange. */
    public record Completed(int peerNodeId, String peerName, int protocolVersion, boolean authenticated) {
    }

    /**
     * The handshake failed and the connection is closing.
     *
     * @param byPeer whether the peer refused (its REFUSE arrived) rather than this node
     */
    public record Refused(RefuseReason reason, String message, boolean byPeer) {
    }

    private enum State { IDLE, AWAIT_HELLO, AWAIT_AUTH, DONE, FAILED }

    private static final SecureRandom RANDOM = new SecureRandom();

    private final HandshakeSettings settings;
    private final Consumer<byte[]> challengeSource;
    private final PeerFrameEncoder encoder = new PeerFrameEncoder();
    private final PeerFrame frame = new PeerFrame();
    private final byte[] myChallenge = new byte[PeerFrame.CHALLENGE_BYTES];
    private final byte[] peerChallenge = new byte[PeerFrame.CHALLENGE_BYTES];
    private final byte[] secret;

    private ChannelHandlerContext ctx;
    private State state = State.IDLE;
    private ScheduledFuture<?> timeout;
    private int agreedVersion;
    private boolean peerAccepted;
    private boolean acceptedPeer;
    private int channel = PeerFrame.CHANNEL_DATA;
    /** This end accepted the connection: it answers the challenge only after the dialler's answer checked out. */
    private boolean acceptedConnection;

    /** The handshake of the dialling end, on the data channel. */
    public PeerHandshake(HandshakeSettings settings) {
        this(settings, RANDOM::nextBytes);
    }

    /** @param channel {@link PeerFrame#CHANNEL_DATA} or {@link PeerFrame#CHANNEL_META}; the peer must name the same */
    public PeerHandshake(HandshakeSettings settings, int channel) {
        this(settings, RANDOM::nextBytes);
        this.channel = channel;
    }

    /**
     * @param channel            {@link PeerFrame#CHANNEL_DATA} or {@link PeerFrame#CHANNEL_META}; the peer must
     *                           name the same
     * @param acceptedConnection this end accepted the connection (the listener's side) rather than dialled it
     */
    public PeerHandshake(HandshakeSettings settings, int channel, boolean acceptedConnection) {
        this(settings, channel);
        this.acceptedConnection = acceptedConnection;
    }

    /** @param challengeSource fills a challenge; tests inject a fixed one */
    PeerHandshake(HandshakeSettings settings, Consumer<byte[]> challengeSource) {
        this.settings = settings;
        this.challengeSource = challengeSource;
        this.secret = settings.sharedSecret().map(s -> s.getBytes(StandardCharsets.UTF_8)).orElse(null);
    }

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
        this.ctx = ctx;
        if (ctx.channel().isActive()) {
            start();
        }
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
        start();
        ctx.fireChannelActive();
    }

    @Override
    public void handlerRemoved(ChannelHandlerContext ctx) {
        cancelTimeout();
    }

    private void start() {
        if (state != State.IDLE) {
            return;
        }
        state = State.AWAIT_HELLO;
        challengeSource.accept(myChallenge);
        long ns = settings.timeout().toNanos();
        timeout = ctx.executor().schedule(() -> fail(RefuseReason.TIMEOUT, "no handshake with "
                + settings.peerLabel() + " within " + settings.timeout().toMillis() + " ms (timeout) for resource "
                + settings.resourceName()), ns, TimeUnit.NANOSECONDS);
        LOG.debug("resource {}: handshake with {} started", settings.resourceName(), settings.peerLabel());
        ctx.writeAndFlush(encoder.hello(ctx.alloc(), settings.versionMin(), settings.versionMax(),
                settings.localNodeId(), settings.volumeSizeBytes(), settings.protocol(),
                secret == null ? PeerFrame.AUTH_NONE : PeerFrame.AUTH_HMAC_SHA256, myChallenge,
                settings.resourceName(), channel));
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (state == State.DONE) {
            ctx.fireChannelRead(msg);
            return;
        }
        try {
            if (state == State.FAILED || !(msg instanceof ByteBuf)) {
                return;
            }
            onFrame(frame.wrap((ByteBuf) msg));
        } finally {
            ReferenceCountUtil.release(msg);
        }
    }

    private void onFrame(PeerFrame f) {
        switch (f.type()) {
            case HELLO -> {
                if (state != State.AWAIT_HELLO) {
                    protocolError("a second HELLO");
                } else {
                    onHello(f);
                }
            }
            case AUTH_RESPONSE -> {
                if (state != State.AWAIT_AUTH || secret == null || acceptedPeer) {
                    protocolError("an unexpected AUTH_RESPONSE");
                } else {
                    onAuthResponse(f);
                }
            }
            case AUTH_OK -> {
                if (state != State.AWAIT_AUTH || peerAccepted) {
                    protocolError("an unexpected AUTH_OK");
                } else {
                    peerAccepted = true;
                    completeIfBothAccepted();
                }
            }
            case REFUSE -> onPeerRefused(f);
            default -> protocolError("a " + f.type() + " frame");
        }
    }

    private void onHello(PeerFrame f) {
        String refusal = checkHello(f);
        if (refusal != null) {
            return; // checkHello has failed the handshake
        }
        f.challenge(peerChallenge);
        if (MessageDigest.isEqual(peerChallenge, myChallenge)) {
            fail(RefuseReason.CHALLENGE_REFLECTED, settings.peerLabel() + " sent back " + settings.localLabel()
                    + "'s own challenge: a reflection attack, or a connection looped back to itself");
            return;
        }
        state = State.AWAIT_AUTH;
        if (secret == null) {
            accept();
        } else if (!acceptedConnection) {
            sendAuthResponse();
        } // else the dialler proves it knows the secret first (onAuthResponse)
    }

    private void sendAuthResponse() {
        ctx.writeAndFlush(encoder.authResponse(ctx.alloc(), hmac(peerChallenge, settings.localNodeId())));
    }

    /** @return null if the HELLO is acceptable, else the refusal already made */
    private String checkHello(PeerFrame f) {
        String peer = settings.peerLabel();
        String me = settings.localLabel();
        int peerMin = f.versionMin();
        int peerMax = f.versionMax();
        int lo = Math.max(peerMin, settings.versionMin());
        int hi = Math.min(peerMax, settings.versionMax());
        if (lo > hi || peerMin > peerMax) {
            return fail(RefuseReason.VERSION_MISMATCH, "protocol versions do not overlap: " + me + " speaks "
                    + settings.versionMin() + ".." + settings.versionMax() + ", " + peer + " speaks " + peerMin
                    + ".." + peerMax + "; upgrade the older node");
        }
        agreedVersion = hi;
        if (f.helloChannel() != channel) {
            return fail(RefuseReason.PROTOCOL_ERROR, settings.peerLabel() + " opened channel " + f.helloChannel()
                    + " where " + settings.localLabel() + " expected channel " + channel);
        }
        int id = f.nodeId();
        if (id == settings.localNodeId()) {
            return fail(RefuseReason.NODE_ID_CONFLICT, "the peer expected to be " + peer + " says it is node "
                    + id + ", the id of " + me + " itself; every node needs its own id");
        }
        if (id != settings.peerNodeId()) {
            return fail(RefuseReason.NODE_ID_UNEXPECTED, me + " expected " + peer + " on this connection but the peer"
                    + " says it is node " + id + "; check the node ids and addresses in the configuration");
        }
        String resource = f.resourceName();
        if (!resource.equals(settings.resourceName())) {
            return fail(RefuseReason.RESOURCE_MISMATCH, "resource differs: " + me + " connects '"
                    + settings.resourceName() + "', " + peer + " connects '" + resource + "'");
        }
        long size = f.volumeSizeBytes();
        if (size != settings.volumeSizeBytes()) {
            return fail(RefuseReason.SIZE_MISMATCH, "volume size of resource " + resource + " differs: " + me
                    + " has " + describeSize(settings.volumeSizeBytes()) + ", " + peer + " has "
                    + describeSize(size) + "; give both the same size");
        }
        ReplicationProtocol protocol = PeerFrame.protocol(f.protocolCode());
        if (protocol != settings.protocol()) {
            String theirs = protocol == null ? "an unknown protocol (code " + f.protocolCode() + ")"
                    : "protocol " + protocol;
            return fail(RefuseReason.PROTOCOL_MISMATCH, "replication protocol of resource " + resource
                    + " differs: " + me + " uses protocol " + settings.protocol() + ", " + peer + " uses " + theirs);
        }
        return checkAuthConfig(f.authAlgorithm(), me, peer, resource);
    }

    private String checkAuthConfig(int peerAuth, String me, String peer, String resource) {
        if (peerAuth != PeerFrame.AUTH_NONE && peerAuth != PeerFrame.AUTH_HMAC_SHA256) {
            return fail(RefuseReason.AUTH_CONFIG_MISMATCH, peer + " asks for authentication algorithm " + peerAuth
                    + ", which " + me + " does not know");
        }
        boolean peerHas = peerAuth == PeerFrame.AUTH_HMAC_SHA256;
        if (peerHas != (secret != null)) {
            String with = peerHas ? peer : me;
            String without = peerHas ? me : peer;
            return fail(RefuseReason.AUTH_CONFIG_MISMATCH, with + " has a shared secret for resource " + resource
                    + " but " + without + " has none; configure the same shared-secret on both or on neither");
        }
        return null;
    }

    private void onAuthResponse(PeerFrame f) {
        byte[] theirs = new byte[PeerFrame.HMAC_BYTES];
        f.hmac(theirs);
        byte[] expected = hmac(myChallenge, settings.peerNodeId());
        if (!MessageDigest.isEqual(theirs, expected)) {
            fail(RefuseReason.AUTH_FAILED, "authentication failed between " + settings.localLabel() + " and "
                    + settings.peerLabel() + " for resource " + settings.resourceName()
                    + ": the shared secrets differ");
            return;
        }
        if (acceptedConnection) {
            sendAuthResponse();
        }
        accept();
    }

    private void accept() {
        acceptedPeer = true;
        ctx.writeAndFlush(encoder.authOk(ctx.alloc()));
        completeIfBothAccepted();
    }

    private void completeIfBothAccepted() {
        if (!acceptedPeer || !peerAccepted || state != State.AWAIT_AUTH) {
            return;
        }
        state = State.DONE;
        cancelTimeout();
        LOG.info("resource {}: connected to {} (protocol version {}, {})", settings.resourceName(),
                settings.peerLabel(), agreedVersion, secret != null ? "authenticated" : "no shared secret");
        ctx.fireUserEventTriggered(new Completed(settings.peerNodeId(), settings.peerName(), agreedVersion,
                secret != null));
        ctx.pipeline().remove(this);
    }

    private void onPeerRefused(PeerFrame f) {
        RefuseReason reason = f.refuseReason();
        String message = settings.peerLabel() + " refused the connection: " + f.message();
        state = State.FAILED;
        cancelTimeout();
        LOG.warn("resource {}: {} [{}]", settings.resourceName(), message, reason);
        ctx.fireUserEventTriggered(new Refused(reason, message, true));
        ctx.close();
    }

    private void protocolError(String what) {
        fail(RefuseReason.PROTOCOL_ERROR, settings.peerLabel() + " sent " + what + " during the handshake");
    }

    /**
     * Fails the handshake: log, event, REFUSE to the peer, close. Idempotent.
     *
     * @return the message, for {@link #checkHello}
     */
    private String fail(RefuseReason reason, String message) {
        if (state == State.DONE || state == State.FAILED) {
            return message;
        }
        state = State.FAILED;
        cancelTimeout();
        LOG.warn("resource {}: refusing {}: {} [{}]", settings.resourceName(), settings.peerLabel(), message, reason);
        ctx.fireUserEventTriggered(new Refused(reason, message, false));
        if (ctx.channel().isActive()) {
            // half-close and let the peer read REFUSE: closing outright while its frames are still
            // arriving makes the kernel answer with RST, which can discard REFUSE before the peer reads it
            ctx.writeAndFlush(encoder.refuse(ctx.alloc(), reason, message)).addListener(f -> {
                if (ctx.channel() instanceof io.netty.channel.socket.DuplexChannel d && f.isSuccess()) {
                    d.shutdownOutput();
                    ctx.executor().schedule(() -> ctx.close(), 2, TimeUnit.SECONDS);
                } else {
                    ctx.close();
                }
            });
        } else {
            ctx.close();
        }
        return message;
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        if (state == State.DONE) {
            ctx.fireExceptionCaught(cause);
        } else if (cause instanceof PeerProtocolException) {
            fail(RefuseReason.PROTOCOL_ERROR, "malformed frame from " + settings.peerLabel() + ": "
                    + cause.getMessage());
        } else {
            connectionLost("connection error during the handshake with " + settings.peerLabel() + ": " + cause);
        }
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        connectionLost("connection closed by " + settings.peerLabel() + " during the handshake");
        ctx.fireChannelInactive();
    }

    private void connectionLost(String message) {
        if (state == State.DONE || state == State.FAILED) {
            return;
        }
        state = State.FAILED;
        cancelTimeout();
        LOG.warn("resource {}: {}", settings.resourceName(), message);
        ctx.fireUserEventTriggered(new Refused(RefuseReason.CONNECTION_CLOSED, message, false));
        ctx.close();
    }

    private void cancelTimeout() {
        if (timeout != null) {
            timeout.cancel(false);
            timeout = null;
        }
    }

    private byte[] hmac(byte[] challenge, int nodeId) {
        return challengeResponse(secret, challenge, nodeId);
    }

    /**
     * The answer to an authentication challenge: HMAC-SHA256(secret, challenge ++ nodeId as big-endian
     * u32). Shared with the cluster store's Raft gateway, which authenticates members the same way.
     */
    public static byte[] challengeResponse(byte[] secret, byte[] challenge, int nodeId) {
        try {
            Mac mac = Mac.getInstance(HMAC_ALGORITHM);
            mac.init(new SecretKeySpec(secret, HMAC_ALGORITHM));
            mac.update(challenge);
            mac.update(new byte[] {(byte) (nodeId >>> 24), (byte) (nodeId >>> 16), (byte) (nodeId >>> 8),
                    (byte) nodeId});
            return mac.doFinal();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(HMAC_ALGORITHM + " is not available in this JVM", e);
        }
    }

    private static String describeSize(long bytes) {
        return bytes + " bytes (" + Sizes.format(bytes) + ")";
    }
}
