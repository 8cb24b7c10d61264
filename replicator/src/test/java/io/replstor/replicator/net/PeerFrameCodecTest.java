package io.replstor.replicator.net;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.replstor.replicator.DiskState;
import io.replstor.replicator.Role;
import io.replstor.replicator.config.ReplicationProtocol;
import io.replstor.replicator.sync.GenerationIds;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(30)
class PeerFrameCodecTest {
    private static final ByteBufAllocator ALLOC = PooledByteBufAllocator.DEFAULT;
    private static LeakWatcher leaks;

    @BeforeAll
    static void watchLeaks() {
        leaks = new LeakWatcher();
    }

    @AfterAll
    static void noLeaks() throws InterruptedException {
        leaks.assertNoLeaks();
    }

    /** An encoded frame and what its fields must read back as. */
    private record Sample(PeerFrameType type, byte[] bytes, Consumer<PeerFrame> check) {
    }

    private static byte[] pattern(int n, int seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    /** Concatenates and releases. */
    private static byte[] bytes(ByteBuf... parts) {
        ByteBuf all = Unpooled.buffer();
        for (ByteBuf p : parts) {
            all.writeBytes(p, p.readerIndex(), p.readableBytes());
            p.release();
        }
        return ByteBufUtil.getBytes(all);
    }

    /** One frame of every type; bulk payloads of {@code bulkBytes}. */
    private static List<Sample> samples(int bulkBytes) {
        PeerFrameEncoder enc = new PeerFrameEncoder();
        List<Sample> s = new ArrayList<>();
        byte[] challenge = pattern(PeerFrame.CHALLENGE_BYTES, 1);
        s.add(new Sample(PeerFrameType.HELLO, bytes(enc.hello(ALLOC, 1, 3, 7, 1L << 40, ReplicationProtocol.B,
                PeerFrame.AUTH_HMAC_SHA256, challenge, "r0-données")), f -> {
                    assertEquals(1, f.versionMin());
                    assertEquals(3, f.versionMax());
                    assertEquals(7, f.nodeId());
                    assertEquals(1L << 40, f.volumeSizeBytes());
                    assertEquals(ReplicationProtocol.B, PeerFrame.protocol(f.protocolCode()));
                    assertEquals(PeerFrame.AUTH_HMAC_SHA256, f.authAlgorithm());
                    byte[] c = new byte[PeerFrame.CHALLENGE_BYTES];
                    f.challenge(c);
                    assertArrayEquals(challenge, c);
                    assertEquals("r0-données", f.resourceName());
                }));
        byte[] hmac = pattern(PeerFrame.HMAC_BYTES, 2);
        s.add(new Sample(PeerFrameType.AUTH_RESPONSE, bytes(enc.authResponse(ALLOC, hmac)), f -> {
            byte[] h = new byte[PeerFrame.HMAC_BYTES];
            f.hmac(h);
            assertArrayEquals(hmac, h);
        }));
        s.add(new Sample(PeerFrameType.AUTH_OK, bytes(enc.authOk(ALLOC)), f -> assertEquals(0, f.payloadLength())));
        s.add(new Sample(PeerFrameType.REFUSE, bytes(enc.refuse(ALLOC, RefuseReason.SIZE_MISMATCH, "größe ≠")), f -> {
            assertEquals(RefuseReason.SIZE_MISMATCH, f.refuseReason());
            assertEquals("größe ≠", f.message());
        }));
        GenerationIds ids = new GenerationIds(0xAAAA_0000_0000_0001L, 0xBBBB_0000_0000_0000L,
                List.of(0xCCCCL, 0xDDDDL, -2L), true, false);
        s.add(new Sample(PeerFrameType.UUIDS, bytes(enc.uuids(ALLOC, ids, 77)), f -> {
            assertEquals(3, f.historyCount());
            assertEquals(-2L, f.history(2));
            assertEquals(ids, f.generationIds());
            assertEquals(77, f.dataTerm());
        }));
        s.add(new Sample(PeerFrameType.STATE, bytes(enc.state(ALLOC, Role.PRIMARY, DiskState.UP_TO_DATE,
                PeerFrame.STATE_FLAG_SYNC_PAUSED, Long.MAX_VALUE)), f -> {
                    assertEquals(Role.PRIMARY, f.role());
                    assertEquals(DiskState.UP_TO_DATE, f.diskState());
                    assertEquals(PeerFrame.STATE_FLAG_SYNC_PAUSED, f.stateFlags());
                    assertEquals(Long.MAX_VALUE, f.term());
                }));
        byte[] data = pattern(bulkBytes, 3);
        ByteBuf payload = Unpooled.wrappedBuffer(data);
        s.add(new Sample(PeerFrameType.DATA, bytes(enc.dataHead(ALLOC, 5, 9, 42, 1L << 33, 0b101, true, payload), payload),
                f -> {
                    assertEquals(5, f.term());
                    assertEquals(0b101, f.targets());
                    assertEquals(9, f.barrier());
                    assertEquals(42, f.sequence());
                    assertEquals(1L << 33, f.offset());
                    assertTrue(f.fua());
                    assertTrue(f.payloadChecksummed());
                    assertArrayEquals(data, ByteBufUtil.getBytes(f.payload()));
                }));
        ByteBuf unchecked = Unpooled.wrappedBuffer(data);
        s.add(new Sample(PeerFrameType.DATA, bytes(new PeerFrameEncoder(false)
                .dataHead(ALLOC, 5, 9, 43, 4096, 1, false, unchecked), unchecked), f -> {
                    assertFalse(f.fua());
                    assertFalse(f.payloadChecksummed(), "bulk payload checksums switched off");
                    assertEquals(43, f.sequence());
                }));
        s.add(new Sample(PeerFrameType.RECV_ACK, bytes(enc.recvAck(ALLOC, 9, 42)), f -> {
            assertEquals(9, f.barrier());
            assertEquals(42, f.sequence());
        }));
        s.add(new Sample(PeerFrameType.WRITE_ACK, bytes(enc.writeAck(ALLOC, Long.MAX_VALUE, -1L)), f -> {
            assertEquals(Long.MAX_VALUE, f.barrier());
            assertEquals(-1L, f.sequence(), "u64 travels as a long");
        }));
        s.add(new Sample(PeerFrameType.NEG_ACK, bytes(enc.negAck(ALLOC, 10, 11)), f -> assertEquals(11, f.sequence())));
        s.add(new Sample(PeerFrameType.BARRIER, bytes(enc.barrier(ALLOC, 6, 12)), f -> {
            assertEquals(6, f.term());
            assertEquals(12, f.barrier());
        }));
        s.add(new Sample(PeerFrameType.BARRIER_ACK, bytes(enc.barrierAck(ALLOC, 12, 0xFFFF_FFFFL)), f -> {
            assertEquals(12, f.barrier());
            assertEquals(0xFFFF_FFFFL, f.count(), "count is a u32");
        }));
        s.add(new Sample(PeerFrameType.PEER_ACK, bytes(enc.peerAck(ALLOC, 13, 0b1011)), f -> {
            assertEquals(13, f.barrier());
            assertEquals(0b1011, f.holders());
        }));
        s.add(new Sample(PeerFrameType.PING, bytes(enc.ping(ALLOC)), f -> assertEquals(0, f.payloadLength())));
        s.add(new Sample(PeerFrameType.PING_ACK, bytes(enc.pingAck(ALLOC)), f -> assertEquals(0, f.payloadLength())));
        int[] runs = {0, 5, 10, -1};
        s.add(new Sample(PeerFrameType.BITMAP, bytes(enc.bitmap(ALLOC, 1000, runs, runs.length)), f -> {
            assertEquals(1000, f.bitOffset());
            assertEquals(4, f.runCount());
            assertEquals(0, f.run(0));
            assertEquals(10, f.run(2));
            assertEquals(0xFFFF_FFFFL, f.run(3));
        }));
        s.add(new Sample(PeerFrameType.RS_REQUEST, bytes(enc.rsRequest(ALLOC, 1L << 35, 65536)), f -> {
            assertEquals(1L << 35, f.offset());
            assertEquals(65536, f.requestLength());
        }));
        byte[] rs = pattern(bulkBytes / 2 + 1, 4);
        ByteBuf rsPayload = Unpooled.wrappedBuffer(rs);
        s.add(new Sample(PeerFrameType.RS_DATA, bytes(enc.rsDataHead(ALLOC, 3, 8192, rsPayload), rsPayload), f -> {
            assertEquals(3, f.term());
            assertEquals(8192, f.offset());
            assertArrayEquals(rs, ByteBufUtil.getBytes(f.payload()));
        }));
        s.add(new Sample(PeerFrameType.DISCONNECT, bytes(enc.disconnect(ALLOC, DisconnectReason.SHUTDOWN, "bye")),
                f -> {
                    assertEquals(DisconnectReason.SHUTDOWN, f.disconnectReason());
                    assertEquals("bye", f.message());
                }));
        return s;
    }

    private static byte[] concat(List<Sample> samples) {
        ByteBuf all = Unpooled.buffer();
        samples.forEach(s -> all.writeBytes(s.bytes()));
        return ByteBufUtil.getBytes(all);
    }

    /** Feeds the chunks (copied into pooled direct buffers if {@code direct}) and returns every frame. */
    private static List<byte[]> decode(boolean direct, byte[]... chunks) {
        EmbeddedChannel ch = new EmbeddedChannel(new PeerFrameDecoder());
        for (byte[] c : chunks) {
            ByteBuf in = direct ? ALLOC.directBuffer(c.length).writeBytes(c) : Unpooled.copiedBuffer(c);
            ch.writeInbound(in);
        }
        List<byte[]> out = new ArrayList<>();
        for (ByteBuf f; (f = ch.readInbound()) != null; ) {
            out.add(ByteBufUtil.getBytes(f));
            f.release();
        }
        assertFalse(ch.finish(), "nothing left over");
        return out;
    }

    private static void assertFrames(List<Sample> expected, List<byte[]> actual, String context) {
        assertEquals(expected.size(), actual.size(), context + ": frame count");
        for (int i = 0; i < expected.size(); i++) {
            assertArrayEquals(expected.get(i).bytes(), actual.get(i), context + ": frame " + i);
        }
    }

    @Test
    void everyFrameTypeRoundTripsWithItsFields() {
        List<Sample> samples = samples(4096);
        Set<PeerFrameType> seen = EnumSet.noneOf(PeerFrameType.class);
        PeerFrame flyweight = new PeerFrame();
        for (Sample s : samples) {
            EmbeddedChannel ch = new EmbeddedChannel(new PeerFrameDecoder());
            ch.writeInbound(Unpooled.copiedBuffer(s.bytes()));
            ByteBuf frame = ch.readInbound();
            try {
                assertArrayEquals(s.bytes(), ByteBufUtil.getBytes(frame), s.type() + " bytes");
                flyweight.wrap(frame);
                assertEquals(s.type(), flyweight.type());
                assertEquals(s.bytes().length, flyweight.frameLength());
                s.check().accept(flyweight);
            } finally {
                frame.release();
            }
            assertNull(ch.readInbound());
            assertFalse(ch.finish());
            assertEquals(0, frame.refCnt(), "the decoder kept no reference to " + s.type());
            seen.add(s.type());
        }
        assertEquals(EnumSet.allOf(PeerFrameType.class), seen, "every frame type is covered");
    }

    @Test
    void severalFramesInOneBufferDecodeInOrder() {
        List<Sample> samples = samples(4096);
        assertFrames(samples, decode(false, concat(samples)), "one heap buffer");
        assertFrames(samples, decode(true, concat(samples)), "one direct buffer");
    }

    @Test
    void framesSplitAtEveryByteBoundaryDecodeIdentically() {
        List<Sample> samples = samples(300);
        byte[] all = concat(samples);
        for (int cut = 0; cut <= all.length; cut++) {
            byte[] a = java.util.Arrays.copyOfRange(all, 0, cut);
            byte[] b = java.util.Arrays.copyOfRange(all, cut, all.length);
            assertFrames(samples, decode(cut % 2 == 0, a, b), "split at byte " + cut);
        }
    }

    @Test
    void framesFedOneByteAtATimeDecodeIdentically() {
        List<Sample> samples = samples(300);
        byte[] all = concat(samples);
        byte[][] singles = new byte[all.length][];
        for (int i = 0; i < all.length; i++) {
            singles[i] = new byte[] {all[i]};
        }
        assertFrames(samples, decode(false, singles), "byte by byte");
    }

    @Test
    void dataFrameBecomesItsPayloadWithoutACopy() {
        byte[] data = pattern(4096, 8);
        ByteBuf payload = Unpooled.wrappedBuffer(data);
        byte[] f = bytes(new PeerFrameEncoder().dataHead(ALLOC, 1, 1, 2, 8192, 3, true, payload), payload);
        EmbeddedChannel ch = new EmbeddedChannel(new PeerFrameDecoder());
        ch.writeInbound(ALLOC.directBuffer(f.length).writeBytes(f));
        ByteBuf frame = ch.readInbound();
        PeerFrame flyweight = new PeerFrame().wrap(frame);
        assertEquals(8192, flyweight.offset());
        ByteBuf taken = flyweight.takePayload();
        assertTrue(taken == frame, "the same buffer, reader index moved");
        assertArrayEquals(data, ByteBufUtil.getBytes(taken));
        taken.release();
        assertFalse(ch.finish());
    }

    private static byte[] ping() {
        return bytes(new PeerFrameEncoder().ping(ALLOC));
    }

    /** Feeds {@code bad} and expects the decoder to refuse it with a message containing {@code expected}. */
    private static PeerProtocolException assertRefused(byte[] bad, String expected) {
        EmbeddedChannel ch = new EmbeddedChannel(new PeerFrameDecoder());
        PeerProtocolException e = assertThrows(PeerProtocolException.class,
                () -> ch.writeInbound(Unpooled.copiedBuffer(bad)));
        assertTrue(e.getMessage().contains(expected), "message '" + e.getMessage() + "' lacks '" + expected + "'");
        // after an error the rest of the stream is discarded, even valid frames
        ch.writeInbound(Unpooled.copiedBuffer(ping()));
        assertNull(ch.readInbound(), "nothing decoded after a protocol error");
        assertFalse(ch.finishAndReleaseAll());
        return e;
    }

    @Test
    void badMagicIsAProtocolErrorNamingTheMagic() {
        byte[] f = ping();
        f[0] = (byte) 0xDE;
        f[1] = (byte) 0xAD;
        f[2] = (byte) 0xBE;
        f[3] = (byte) 0xEF;
        assertRefused(f, "bad frame magic 0xDEADBEEF");
    }

    @Test
    void badMagicAfterGoodFramesNamesTheStreamPosition() {
        byte[] good = ping();
        byte[] bad = ping();
        bad[0] = 'X';
        byte[] both = new byte[good.length * 2];
        System.arraycopy(good, 0, both, 0, good.length);
        System.arraycopy(bad, 0, both, good.length, bad.length);
        EmbeddedChannel ch = new EmbeddedChannel(new PeerFrameDecoder());
        PeerProtocolException e = assertThrows(PeerProtocolException.class,
                () -> ch.writeInbound(Unpooled.copiedBuffer(both)));
        assertTrue(e.getMessage().contains("at stream byte " + good.length), e.getMessage());
        ByteBuf first = ch.readInbound();
        assertEquals(PeerFrameType.PING, new PeerFrame().wrap(first).type(), "the good frame before it got through");
        first.release();
        assertFalse(ch.finishAndReleaseAll());
    }

    @Test
    void unknownTypeIsAProtocolError() {
        byte[] f = ping();
        f[PeerFrame.TYPE_OFFSET] = 0;
        f[PeerFrame.TYPE_OFFSET + 1] = 99;
        assertRefused(f, "unknown frame type 99");
    }

    @Test
    void unknownFlagBitsAreAProtocolError() {
        byte[] f = ping();
        f[PeerFrame.FLAGS_OFFSET] = (byte) 0x80;
        assertRefused(f, "PING frame with unknown flag bits 0x8000");
    }

    @Test
    void oversizedDataLengthIsRefusedFromTheHeaderAlone() {
        ByteBuf header = Unpooled.buffer().writeInt(PeerFrame.MAGIC).writeShort(PeerFrameType.DATA.code())
                .writeShort(0).writeInt(PeerFrameDecoder.DEFAULT_MAX_PAYLOAD_BYTES + 1).writeInt(0);
        assertRefused(ByteBufUtil.getBytes(header), "DATA frame declares a payload of 1048577 bytes; the maximum is "
                + "1048576");
    }

    @Test
    void controlFramePayloadBeyondItsTypeIsRefused() {
        ByteBuf header = Unpooled.buffer().writeInt(PeerFrame.MAGIC).writeShort(PeerFrameType.REFUSE.code())
                .writeShort(0).writeInt(5000).writeInt(0);
        assertRefused(ByteBufUtil.getBytes(header), "REFUSE frame declares a payload of 5000 bytes; the maximum is 1024");
    }

    @Test
    void uuidHistoryThatIsNotWholeUuidsIsRefused() {
        ByteBuf header = Unpooled.buffer().writeInt(PeerFrame.MAGIC).writeShort(PeerFrameType.UUIDS.code())
                .writeShort(0).writeInt(12).writeInt(0);
        assertRefused(ByteBufUtil.getBytes(header), "in units of 8");
    }

    @Test
    void corruptedPayloadFailsTheChecksum() {
        ByteBuf payload = Unpooled.wrappedBuffer(pattern(512, 5));
        byte[] f = bytes(new PeerFrameEncoder().dataHead(ALLOC, 1, 1, 2, 3, 3, false, payload), payload);
        f[f.length - 100] ^= 0x10;
        assertRefused(f, "DATA frame of 568 bytes fails its CRC32C");
    }

    @Test
    void corruptedHeadFailsTheChecksumEvenWithoutPayloadChecksums() {
        ByteBuf payload = Unpooled.wrappedBuffer(pattern(512, 5));
        byte[] f = bytes(new PeerFrameEncoder(false).dataHead(ALLOC, 1, 1, 2, 3, 3, false, payload), payload);
        f[PeerFrame.DATA_OFFSET_OFFSET + 3] ^= 0x01; // the write offset
        PeerProtocolException e = assertRefused(f, "fails its CRC32C");
        assertTrue(e.getMessage().contains("head only"), e.getMessage());
    }

    @Test
    void streamClosedInsideAFrameIsAProtocolErrorAndLeaksNothing() {
        ByteBuf payload = Unpooled.wrappedBuffer(pattern(512, 6));
        byte[] f = bytes(new PeerFrameEncoder().dataHead(ALLOC, 1, 1, 2, 3, 3, false, payload), payload);
        EmbeddedChannel ch = new EmbeddedChannel(new PeerFrameDecoder());
        ByteBuf part = ALLOC.directBuffer(30).writeBytes(f, 0, 30);
        assertFalse(ch.writeInbound(part));
        PeerProtocolException e = assertThrows(PeerProtocolException.class, ch::finish);
        assertEquals("connection closed inside a DATA frame of 568 bytes: only 30 bytes arrived"
                + " (frame at stream byte 0)", e.getMessage());
        assertEquals(0, part.refCnt(), "the partial input was released");
    }

    @Test
    void streamClosedInsideAHeaderIsAProtocolError() {
        EmbeddedChannel ch = new EmbeddedChannel(new PeerFrameDecoder());
        ch.writeInbound(Unpooled.copiedBuffer(ping(), 0, 5));
        PeerProtocolException e = assertThrows(PeerProtocolException.class, ch::finish);
        assertTrue(e.getMessage().startsWith("connection closed inside a frame header of 16 bytes: only 5 bytes"),
                e.getMessage());
    }

    @Test
    void smallerConnectionMaximumBoundsBulkPayloads() {
        ByteBuf payload = Unpooled.wrappedBuffer(pattern(4097, 7));
        byte[] f = bytes(new PeerFrameEncoder().rsDataHead(ALLOC, 1, 0, payload), payload);
        EmbeddedChannel ch = new EmbeddedChannel(new PeerFrameDecoder(4096));
        PeerProtocolException e = assertThrows(PeerProtocolException.class,
                () -> ch.writeInbound(Unpooled.copiedBuffer(f)));
        assertTrue(e.getMessage().contains("RS_DATA frame declares a payload of 4097 bytes; the maximum is 4096"),
                e.getMessage());
        assertFalse(ch.finishAndReleaseAll());
    }

    @Test
    void refuseMessageIsCutAtACharacterBoundary() {
        String longMessage = "x" + "é".repeat(PeerFrame.MESSAGE_MAX_BYTES); // 2 bytes each after the x
        byte[] f = bytes(new PeerFrameEncoder().refuse(ALLOC, RefuseReason.PROTOCOL_ERROR, longMessage));
        List<byte[]> out = decode(false, f);
        PeerFrame frame = new PeerFrame().wrap(Unpooled.wrappedBuffer(out.get(0)));
        String cut = frame.message();
        assertEquals("x" + "é".repeat((PeerFrame.MESSAGE_MAX_BYTES - 1) / 2), cut, "no half character at the end");
        assertTrue(cut.getBytes(StandardCharsets.UTF_8).length <= PeerFrame.MESSAGE_MAX_BYTES);
    }
}
