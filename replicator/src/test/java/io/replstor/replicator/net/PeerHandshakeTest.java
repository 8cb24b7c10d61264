package io.replstor.replicator.net;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.embedded.EmbeddedChannel;
import io.replstor.replicator.config.ReplicationProtocol;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Two ends of a connection as two {@link EmbeddedChannel}s (decoder, handshake, a recorder) whose
 * outbound bytes are carried to each other until both are quiet.
 */
@Timeout(30)
class PeerHandshakeTest {
    private static final long GIB = 1L << 30;
    private static LeakWatcher leaks;
    private final List<Node> nodes = new ArrayList<>();

    @BeforeAll
    static void watchLeaks() {
        leaks = new LeakWatcher();
    }

    @AfterAll
    static void noLeaks() throws InterruptedException {
        leaks.assertNoLeaks();
    }

    @AfterEach
    void closeAll() {
        for (Node n : nodes) {
            n.recorder.frames.forEach(ByteBuf::release);
            n.channel.finishAndReleaseAll();
        }
    }

    /** Records what passes the handshake: its events, and frames after it. */
    private static final class Recorder extends ChannelInboundHandlerAdapter {
        final List<Object> events = new ArrayList<>();
        final List<ByteBuf> frames = new ArrayList<>();

        boolean pingOnCompleted;

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            events.add(evt);
            if (pingOnCompleted && evt instanceof PeerHandshake.Completed) {
                ctx.writeAndFlush(new PeerFrameEncoder().ping(ctx.alloc()));
            }
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            frames.add((ByteBuf) msg);
        }
    }

    private record Node(EmbeddedChannel channel, Recorder recorder) {
        PeerHandshake.Completed completed() {
            assertEquals(1, recorder.events.size(), "events " + recorder.events);
            return assertInstanceOf(PeerHandshake.Completed.class, recorder.events.get(0));
        }

        PeerHandshake.Refused refused() {
            assertEquals(1, recorder.events.size(), "events " + recorder.events);
            PeerHandshake.Refused r = assertInstanceOf(PeerHandshake.Refused.class, recorder.events.get(0));
            assertFalse(channel.isOpen(), "a refused connection is closed");
            return r;
        }
    }

    private static HandshakeSettings settings(String local, int localId, String peer, int peerId) {
        return new HandshakeSettings("r0", local, localId, peer, peerId, GIB, ReplicationProtocol.C, Optional.empty(),
                Duration.ofSeconds(6), PeerFrame.PROTOCOL_VERSION_MIN, PeerFrame.PROTOCOL_VERSION_MAX);
    }

    private static HandshakeSettings alpha() {
        return settings("alpha", 0, "beta", 1);
    }

    private static HandshakeSettings beta() {
        return settings("beta", 1, "alpha", 0);
    }

    private static HandshakeSettings secret(HandshakeSettings s, String secret) {
        return new HandshakeSettings(s.resourceName(), s.localName(), s.localNodeId(), s.peerName(), s.peerNodeId(),
                s.volumeSizeBytes(), s.protocol(), Optional.ofNullable(secret), s.timeout(), s.versionMin(),
                s.versionMax());
    }

    private static HandshakeSettings size(HandshakeSettings s, long bytes) {
        return new HandshakeSettings(s.resourceName(), s.localName(), s.localNodeId(), s.peerName(), s.peerNodeId(),
                bytes, s.protocol(), s.sharedSecret(), s.timeout(), s.versionMin(), s.versionMax());
    }

    private static HandshakeSettings protocol(HandshakeSettings s, ReplicationProtocol p) {
        return new HandshakeSettings(s.resourceName(), s.localName(), s.localNodeId(), s.peerName(), s.peerNodeId(),
                s.volumeSizeBytes(), p, s.sharedSecret(), s.timeout(), s.versionMin(), s.versionMax());
    }

    private Node node(HandshakeSettings s) {
        Recorder r = new Recorder();
        Node n = new Node(new EmbeddedChannel(new PeerFrameDecoder(), new PeerHandshake(s), r), r);
        nodes.add(n);
        return n;
    }

    /** The end of a connection that came in through the listener: it answers the challenge second. */
    private Node acceptingNode(HandshakeSettings s) {
        Recorder r = new Recorder();
        Node n = new Node(new EmbeddedChannel(new PeerFrameDecoder(), new PeerHandshake(s, PeerFrame.CHANNEL_DATA, true),
                r), r);
        nodes.add(n);
        return n;
    }

    /** Carries bytes both ways until neither side has anything to send. */
    private static void exchange(Node a, Node b) {
        boolean moved;
        do {
            moved = carry(a.channel, b.channel) | carry(b.channel, a.channel);
        } while (moved);
    }

    private static boolean carry(EmbeddedChannel from, EmbeddedChannel to) {
        boolean moved = false;
        for (ByteBuf m; (m = from.readOutbound()) != null; ) {
            moved = true;
            if (to.isOpen()) {
                to.writeInbound(m);
            } else {
                m.release();
            }
        }
        return moved;
    }

    /** Like {@link #exchange}, but everything one side has queued arrives in a single buffer. */
    private static void exchangeCoalesced(Node a, Node b) {
        boolean moved;
        do {
            moved = carryCoalesced(a.channel, b.channel) | carryCoalesced(b.channel, a.channel);
        } while (moved);
    }

    private static boolean carryCoalesced(EmbeddedChannel from, EmbeddedChannel to) {
        ByteBuf all = to.alloc().buffer();
        for (ByteBuf m; (m = from.readOutbound()) != null; ) {
            all.writeBytes(m);
            m.release();
        }
        if (!all.isReadable() || !to.isOpen()) {
            boolean moved = all.isReadable();
            all.release();
            return moved;
        }
        to.writeInbound(all);
        return true;
    }

    private static void assertRefusedBoth(Node a, Node b, RefuseReason reason, String... phrases) {
        for (Node n : List.of(a, b)) {
            PeerHandshake.Refused r = n.refused();
            assertEquals(reason, r.reason(), r.toString());
            for (String p : phrases) {
                assertTrue(r.message().contains(p), "'" + r.message() + "' lacks '" + p + "'");
            }
        }
    }

    @Test
    void sameSecretCompletesAuthenticatedOnBothSides() {
        Node a = node(secret(alpha(), "s3cret"));
        Node b = node(secret(beta(), "s3cret"));
        exchange(a, b);
        assertEquals(new PeerHandshake.Completed(1, "beta", PeerFrame.PROTOCOL_VERSION_MAX, true), a.completed());
        assertEquals(new PeerHandshake.Completed(0, "alpha", PeerFrame.PROTOCOL_VERSION_MAX, true), b.completed());
        assertNull(a.channel.pipeline().get(PeerHandshake.class), "the handshake left the pipeline");
        assertNull(b.channel.pipeline().get(PeerHandshake.class));
        assertTrue(a.channel.isOpen() && b.channel.isOpen());
    }

    @Test
    void framesAfterTheHandshakeReachTheNextHandler() {
        Node a = node(secret(alpha(), "s3cret"));
        Node b = node(secret(beta(), "s3cret"));
        exchange(a, b);
        a.channel.writeOutbound(new PeerFrameEncoder().barrier(a.channel.alloc(), 1, 5));
        exchange(a, b);
        assertEquals(1, b.recorder.frames.size());
        PeerFrame f = new PeerFrame().wrap(b.recorder.frames.get(0));
        assertEquals(PeerFrameType.BARRIER, f.type());
        assertEquals(5, f.barrier());
    }

    @Test
    void frameRightBehindTheLastHandshakeFrameInOneReadReachesTheNextHandler() {
        Node a = node(alpha());
        Node b = node(beta());
        a.recorder.pingOnCompleted = true;
        exchangeCoalesced(a, b);
        a.completed();
        b.completed();
        assertEquals(1, b.recorder.frames.size(), "alpha's ping, which came in the same buffer as its AUTH_OK");
        assertEquals(PeerFrameType.PING, new PeerFrame().wrap(b.recorder.frames.get(0)).type());
    }

    @Test
    void theAcceptingEndAnswersTheChallengeOnlyAfterTheDiallerHas() {
        Node dialler = node(secret(alpha(), "s3cret"));
        Node acceptor = acceptingNode(secret(beta(), "s3cret"));
        carry(dialler.channel, acceptor.channel); // alpha's HELLO
        ByteBuf hello = acceptor.channel.readOutbound();
        assertEquals(PeerFrameType.HELLO, new PeerFrame().wrap(hello).type());
        assertNull(acceptor.channel.readOutbound(), "no AUTH_RESPONSE before alpha's");
        acceptor.channel.writeOutbound(hello); // back in the queue, in order
        exchange(dialler, acceptor);
        assertTrue(dialler.completed().authenticated());
        assertTrue(acceptor.completed().authenticated());
    }

    @Test
    void aWrongSecretOnTheDiallerIsRefusedByTheAcceptingEndBeforeItAnswers() {
        Node dialler = node(secret(alpha(), "other"));
        Node acceptor = acceptingNode(secret(beta(), "s3cret"));
        exchange(dialler, acceptor);
        assertRefusedBoth(dialler, acceptor, RefuseReason.AUTH_FAILED, "the shared secrets differ");
        assertTrue(dialler.refused().byPeer(), "the dialler never got an answer to check: beta told it");
    }

    @Test
    void challengesRelayedBetweenTwoNodesDoNotAuthenticateAStranger() {
        // a stranger without the secret connects to both nodes, claiming to each that it is the other,
        // and presents beta's challenge to alpha, hoping to relay alpha's answer back to beta
        Node atBeta = acceptingNode(secret(beta(), "s3cret")); // expects alpha, node 0
        Node atAlpha = acceptingNode(secret(alpha(), "s3cret")); // expects beta, node 1
        PeerFrameEncoder enc = new PeerFrameEncoder();
        ByteBuf betaHello = atBeta.channel.readOutbound();
        byte[] betaChallenge = new byte[PeerFrame.CHALLENGE_BYTES];
        new PeerFrame().wrap(betaHello).challenge(betaChallenge);
        betaHello.release();
        atBeta.channel.writeInbound(enc.hello(atBeta.channel.alloc(), PeerFrame.PROTOCOL_VERSION_MIN,
                PeerFrame.PROTOCOL_VERSION_MAX, 0, GIB, ReplicationProtocol.C, PeerFrame.AUTH_HMAC_SHA256,
                new byte[PeerFrame.CHALLENGE_BYTES], "r0"));
        atAlpha.channel.<ByteBuf>readOutbound().release(); // alpha's HELLO
        atAlpha.channel.writeInbound(enc.hello(atAlpha.channel.alloc(), PeerFrame.PROTOCOL_VERSION_MIN,
                PeerFrame.PROTOCOL_VERSION_MAX, 1, GIB, ReplicationProtocol.C, PeerFrame.AUTH_HMAC_SHA256,
                betaChallenge, "r0"));
        ByteBuf fromAlpha = atAlpha.channel.readOutbound();
        byte[] relayed = new byte[PeerFrame.HMAC_BYTES];
        boolean alphaAnswered = fromAlpha != null;
        if (alphaAnswered) {
            new PeerFrame().wrap(fromAlpha).hmac(relayed);
            fromAlpha.release();
        }
        atBeta.channel.writeInbound(io.netty.buffer.Unpooled.wrappedBuffer(
                enc.authResponse(atBeta.channel.alloc(), relayed), enc.authOk(atBeta.channel.alloc())));
        assertEquals(RefuseReason.AUTH_FAILED, atBeta.refused().reason());
        assertFalse(alphaAnswered, "alpha answered a stranger's challenge before the stranger proved the secret");
    }

    @Test
    void noSecretOnEitherSideCompletesUnauthenticated() {
        Node a = node(alpha());
        Node b = node(beta());
        exchange(a, b);
        assertFalse(a.completed().authenticated());
        assertFalse(b.completed().authenticated());
    }

    @Test
    void wrongSecretRefusesBothSidesWithAuthFailed() {
        Node a = node(secret(alpha(), "s3cret"));
        Node b = node(secret(beta(), "other"));
        exchange(a, b);
        assertRefusedBoth(a, b, RefuseReason.AUTH_FAILED, "the shared secrets differ", "resource r0");
        assertFalse(a.refused().byPeer(), "each side found the wrong response itself");
        assertFalse(b.refused().byPeer());
    }

    @Test
    void secretOnOneSideOnlyIsRefusedByBoth() {
        Node a = node(secret(alpha(), "s3cret"));
        Node b = node(beta());
        exchange(a, b);
        assertRefusedBoth(a, b, RefuseReason.AUTH_CONFIG_MISMATCH,
                "alpha (node 0) has a shared secret for resource r0 but beta (node 1) has none");
    }

    @Test
    void differentSizesAreRefusedNamingBothSizes() {
        Node a = node(alpha());
        Node b = node(size(beta(), 2 * GIB));
        exchange(a, b);
        assertRefusedBoth(a, b, RefuseReason.SIZE_MISMATCH, "1073741824 bytes", "2147483648 bytes", "alpha (node 0)",
                "beta (node 1)");
    }

    @Test
    void differentProtocolsAreRefused() {
        Node a = node(protocol(alpha(), ReplicationProtocol.A));
        Node b = node(beta());
        exchange(a, b);
        assertRefusedBoth(a, b, RefuseReason.PROTOCOL_MISMATCH, "alpha (node 0) uses protocol A",
                "beta (node 1) uses protocol C");
    }

    @Test
    void differentResourceNamesAreRefused() {
        Node a = node(alpha());
        HandshakeSettings bs = beta();
        Node b = node(new HandshakeSettings("r1", bs.localName(), bs.localNodeId(), bs.peerName(), bs.peerNodeId(),
                bs.volumeSizeBytes(), bs.protocol(), bs.sharedSecret(), bs.timeout(), PeerFrame.PROTOCOL_VERSION_MIN,
                PeerFrame.PROTOCOL_VERSION_MAX));
        exchange(a, b);
        assertRefusedBoth(a, b, RefuseReason.RESOURCE_MISMATCH, "'r0'", "'r1'");
    }

    @Test
    void unexpectedNodeIdIsRefusedAndThePeerLearnsWhy() {
        Node a = node(alpha()); // expects beta, node 1
        Node c = node(settings("gamma", 2, "alpha", 0)); // gamma does expect alpha
        exchange(a, c);
        PeerHandshake.Refused ra = a.refused();
        assertEquals(RefuseReason.NODE_ID_UNEXPECTED, ra.reason());
        assertTrue(ra.message().contains("expected beta (node 1) on this connection but the peer says it is node 2"),
                ra.message());
        PeerHandshake.Refused rc = c.refused();
        assertEquals(RefuseReason.NODE_ID_UNEXPECTED, rc.reason(), "gamma learns alpha's reason from REFUSE");
        assertTrue(rc.byPeer());
        assertTrue(rc.message().contains("alpha (node 0) refused the connection: " + ra.message()), rc.message());
    }

    @Test
    void peerClaimingMyOwnNodeIdIsRefused() {
        Node a = node(alpha());
        Node twin = node(settings("alpha-twin", 0, "beta", 1));
        exchange(a, twin);
        assertEquals(RefuseReason.NODE_ID_CONFLICT, a.refused().reason());
    }

    @Test
    void versionRangesWithoutOverlapAreRefused() {
        Node a = node(alpha().withVersions(1, 2));
        Node b = node(beta().withVersions(3, 4));
        exchange(a, b);
        assertRefusedBoth(a, b, RefuseReason.VERSION_MISMATCH, "alpha (node 0) speaks 1..2", "beta (node 1) speaks 3..4");
    }

    @Test
    void overlappingVersionRangesAgreeOnTheHighestCommon() {
        Node a = node(alpha().withVersions(1, 3));
        Node b = node(beta().withVersions(2, 5));
        exchange(a, b);
        assertEquals(3, a.completed().protocolVersion());
        assertEquals(3, b.completed().protocolVersion());
    }

    @Test
    void reflectedChallengeIsRefused() {
        Node a = node(secret(alpha(), "s3cret"));
        ByteBuf hello = a.channel.readOutbound();
        PeerFrame f = new PeerFrame().wrap(hello);
        byte[] challenge = new byte[PeerFrame.CHALLENGE_BYTES];
        f.challenge(challenge);
        // an attacker without the secret poses as beta and hands alpha its own challenge back, hoping
        // to replay alpha's answer as its own
        ByteBuf reflected = new PeerFrameEncoder().hello(a.channel.alloc(), PeerFrame.PROTOCOL_VERSION_MIN,
                PeerFrame.PROTOCOL_VERSION_MAX, 1, GIB, ReplicationProtocol.C,
                PeerFrame.AUTH_HMAC_SHA256, challenge, "r0");
        hello.release();
        a.channel.writeInbound(reflected);
        PeerHandshake.Refused r = a.refused();
        assertEquals(RefuseReason.CHALLENGE_REFLECTED, r.reason());
        ByteBuf refuse = a.channel.readOutbound();
        assertNotNull(refuse);
        PeerFrame rf = new PeerFrame().wrap(refuse);
        assertEquals(PeerFrameType.REFUSE, rf.type(), "no AUTH_RESPONSE went out: only the refusal");
        assertEquals(RefuseReason.CHALLENGE_REFLECTED, rf.refuseReason());
        refuse.release();
    }

    @Test
    void silentPeerTimesOut() {
        Node a = node(alpha());
        ByteBuf hello = a.channel.readOutbound();
        hello.release();
        a.channel.advanceTimeBy(5, TimeUnit.SECONDS);
        a.channel.runScheduledPendingTasks();
        assertTrue(a.recorder.events.isEmpty(), "not yet: the timeout is 6 s");
        a.channel.advanceTimeBy(2, TimeUnit.SECONDS);
        a.channel.runScheduledPendingTasks();
        PeerHandshake.Refused r = a.refused();
        assertEquals(RefuseReason.TIMEOUT, r.reason());
        assertTrue(r.message().contains("no handshake with beta (node 1) within 6000 ms"), r.message());
    }

    @Test
    void dataBeforeTheHandshakeIsAProtocolError() {
        Node a = node(alpha());
        a.channel.writeInbound(new PeerFrameEncoder().ping(a.channel.alloc()));
        PeerHandshake.Refused r = a.refused();
        assertEquals(RefuseReason.PROTOCOL_ERROR, r.reason());
        assertTrue(r.message().contains("beta (node 1) sent a PING frame during the handshake"), r.message());
    }

    @Test
    void garbageFromThePeerIsRefusedAsAProtocolError() {
        Node a = node(alpha());
        a.channel.writeInbound(io.netty.buffer.Unpooled.copiedBuffer("GET / HTTP/1.1\r\n\r\n",
                java.nio.charset.StandardCharsets.US_ASCII));
        PeerHandshake.Refused r = a.refused();
        assertEquals(RefuseReason.PROTOCOL_ERROR, r.reason());
        assertTrue(r.message().contains("bad frame magic 0x47455420"), r.message());
    }

    @Test
    void peerClosingDuringTheHandshakeIsReported() {
        Node a = node(alpha());
        a.channel.close();
        PeerHandshake.Refused r = a.refused();
        assertEquals(RefuseReason.CONNECTION_CLOSED, r.reason());
    }
}
