package io.replstor.nbd.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.replstor.nbd.Nbd;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The handshake against a scripted server on an {@link EmbeddedChannel}: the paths nbdkit cannot show
 * (EXPORT_NAME fallback, malformed replies) and the exact bytes the client sends.
 */
@ExtendWith(LeakCheck.class)
@Timeout(value = 10, unit = TimeUnit.SECONDS)
class HandshakeTest {
    private static final String PEER = "test:10809";
    private static final int GREETING_FLAGS = Nbd.FLAG_FIXED_NEWSTYLE | Nbd.FLAG_NO_ZEROES;

    private EmbeddedChannel channel;
    private TransmissionHandler transmission;

    @AfterEach
    void finish() {
        if (channel != null) {
            channel.finishAndReleaseAll();
        }
    }

    private CompletableFuture<Handshake.Negotiated> start(NbdClientOptions opts) {
        OptionReplyDecoder decoder = new OptionReplyDecoder();
        OptionNegotiator negotiator = new OptionNegotiator(PEER, decoder);
        channel = new EmbeddedChannel(decoder, negotiator);
        transmission = new TransmissionHandler(PEER);
        return new Handshake(negotiator, opts, channel.alloc()).toTransmission(transmission);
    }

    private static NbdClientOptions.Builder options() {
        return NbdClientOptions.builder().exportName("disk").structuredReplies(false);
    }

    private static ByteBuf greeting(long optMagic, int flags) {
        return Unpooled.buffer().writeLong(Nbd.NBDMAGIC).writeLong(optMagic).writeShort(flags);
    }

    private static ByteBuf reply(int option, int type, ByteBuf data) {
        ByteBuf header = Unpooled.buffer().writeLong(Nbd.OPTION_REPLY_MAGIC).writeInt(option).writeInt(type)
                .writeInt(data.readableBytes());
        return Unpooled.wrappedBuffer(header, data);
    }

    private static ByteBuf reply(int option, int type) {
        return reply(option, type, Unpooled.EMPTY_BUFFER);
    }

    private static ByteBuf info(int infoType, ByteBuf body) {
        return Unpooled.wrappedBuffer(Unpooled.buffer(2).writeShort(infoType), body);
    }

    private static ByteBuf utf8(String text) {
        return Unpooled.copiedBuffer(text, StandardCharsets.UTF_8);
    }

    /** Reads the next option the client sent, checks its magic and number, and returns its data (to release). */
    private ByteBuf expectOption(int option) {
        ByteBuf sent = channel.readOutbound();
        assertNotNull(sent, "expected " + Nbd.optionName(option));
        try {
            assertEquals(Nbd.IHAVEOPT, sent.readLong());
            assertEquals(Nbd.optionName(option), Nbd.optionName(sent.readInt()));
            assertEquals(sent.readableBytes() - 4, sent.readInt());
            return sent.readRetainedSlice(sent.readableBytes());
        } finally {
            sent.release();
        }
    }

    private void expectClientFlags(int flags) {
        ByteBuf sent = channel.readOutbound();
        assertEquals(4, sent.readableBytes());
        assertEquals(flags, sent.readInt());
        sent.release();
    }

    private static NbdException failure(CompletableFuture<?> future) {
        ExecutionException e = org.junit.jupiter.api.Assertions.assertThrows(ExecutionException.class,
                () -> future.get(0, TimeUnit.SECONDS));
        return assertInstanceOf(NbdException.class, e.getCause());
    }

    @ParameterizedTest(name = "server offers NO_ZEROES: {0}")
    @ValueSource(booleans = {true, false})
    void goUnsupportedFallsBackToExportName(boolean noZeroes) throws Exception {
        CompletableFuture<Handshake.Negotiated> result = start(options().build());
        channel.writeInbound(greeting(Nbd.IHAVEOPT, Nbd.FLAG_FIXED_NEWSTYLE | (noZeroes ? Nbd.FLAG_NO_ZEROES : 0)));
        expectClientFlags(Nbd.FLAG_C_FIXED_NEWSTYLE | (noZeroes ? Nbd.FLAG_C_NO_ZEROES : 0));
        expectOption(Nbd.OPT_GO).release();
        channel.writeInbound(reply(Nbd.OPT_GO, Nbd.REP_ERR_UNSUP));
        ByteBuf name = expectOption(Nbd.OPT_EXPORT_NAME);
        assertEquals("disk", name.toString(StandardCharsets.UTF_8));
        name.release();
        ByteBuf exportReply = Unpooled.buffer().writeLong(1 << 20).writeShort(0x0d);
        if (!noZeroes) {
            exportReply.writeZero(124);
        }
        channel.writeInbound(exportReply);
        Handshake.Negotiated negotiated = result.getNow(null);
        assertEquals(new ExportInfo("disk", "", 1 << 20, 0x0d, 1, 4096, 32 << 20, false), negotiated.export());
        assertFalse(negotiated.structuredReplies());
        assertTrue(channel.pipeline().get(TransmissionHandler.class) == transmission);
        assertNotNull(channel.pipeline().get(ReplyDecoder.class));
    }

    @Test
    void goCollectsInfoRepliesAndMetaContexts() throws Exception {
        CompletableFuture<Handshake.Negotiated> result = start(options().structuredReplies(true)
                .metaContexts(List.of(Nbd.BASE_ALLOCATION)).build());
        channel.writeInbound(greeting(Nbd.IHAVEOPT, GREETING_FLAGS));
        expectClientFlags(Nbd.FLAG_C_FIXED_NEWSTYLE | Nbd.FLAG_C_NO_ZEROES);
        expectOption(Nbd.OPT_STRUCTURED_REPLY).release();
        channel.writeInbound(reply(Nbd.OPT_STRUCTURED_REPLY, Nbd.REP_ACK));

        ByteBuf query = expectOption(Nbd.OPT_SET_META_CONTEXT);
        assertEquals(4, query.readInt());
        assertEquals("disk", query.readCharSequence(4, StandardCharsets.UTF_8));
        assertEquals(1, query.readInt());
        assertEquals(Nbd.BASE_ALLOCATION, query.readCharSequence(query.readInt(), StandardCharsets.UTF_8));
        query.release();
        channel.writeInbound(reply(Nbd.OPT_SET_META_CONTEXT, Nbd.REP_META_CONTEXT,
                Unpooled.wrappedBuffer(Unpooled.buffer(4).writeInt(42), utf8(Nbd.BASE_ALLOCATION))));
        channel.writeInbound(reply(Nbd.OPT_SET_META_CONTEXT, Nbd.REP_ACK));

        ByteBuf go = expectOption(Nbd.OPT_GO);
        assertEquals("disk", go.readCharSequence(go.readInt(), StandardCharsets.UTF_8));
        assertEquals(4, go.readUnsignedShort());
        assertEquals(List.of(Nbd.INFO_EXPORT, Nbd.INFO_NAME, Nbd.INFO_DESCRIPTION, Nbd.INFO_BLOCK_SIZE),
                List.of(go.readShort() & 0xffff, go.readShort() & 0xffff, go.readShort() & 0xffff,
                        go.readShort() & 0xffff));
        go.release();
        channel.writeInbound(reply(Nbd.OPT_GO, Nbd.REP_INFO,
                info(Nbd.INFO_EXPORT, Unpooled.buffer().writeLong(1L << 30).writeShort(0x4ed))));
        channel.writeInbound(reply(Nbd.OPT_GO, Nbd.REP_INFO, info(Nbd.INFO_NAME, utf8("canonical"))));
        channel.writeInbound(reply(Nbd.OPT_GO, Nbd.REP_INFO, info(Nbd.INFO_DESCRIPTION, utf8("a test disk"))));
        channel.writeInbound(reply(Nbd.OPT_GO, Nbd.REP_INFO,
                info(Nbd.INFO_BLOCK_SIZE, Unpooled.buffer().writeInt(512).writeInt(4096).writeInt(1 << 20))));
        channel.writeInbound(reply(Nbd.OPT_GO, Nbd.REP_INFO, info(99, utf8("ignored"))));
        assertFalse(result.isDone());
        channel.writeInbound(reply(Nbd.OPT_GO, Nbd.REP_ACK));

        Handshake.Negotiated negotiated = result.getNow(null);
        assertEquals(new ExportInfo("canonical", "a test disk", 1L << 30, 0x4ed, 512, 4096, 1 << 20, true),
                negotiated.export());
        assertTrue(negotiated.structuredReplies());
        assertEquals(42, negotiated.metaContexts().get(Nbd.BASE_ALLOCATION));
    }

    @Test
    void goErrorNamesServerExportOptionReplyAndMessage() {
        CompletableFuture<Handshake.Negotiated> result = start(options().build());
        channel.writeInbound(greeting(Nbd.IHAVEOPT, GREETING_FLAGS));
        expectClientFlags(Nbd.FLAG_C_FIXED_NEWSTYLE | Nbd.FLAG_C_NO_ZEROES);
        expectOption(Nbd.OPT_GO).release();
        channel.writeInbound(reply(Nbd.OPT_GO, Nbd.REP_ERR_UNKNOWN, utf8("no disk here")));
        NbdException e = failure(result);
        assertEquals(NbdException.Kind.OPTION_REFUSED, e.kind());
        assertEquals("no disk here", e.serverMessage());
        for (String part : new String[] {PEER, "'disk'", "GO", "ERR_UNKNOWN", "no disk here"}) {
            assertTrue(e.getMessage().contains(part), part + " in: " + e.getMessage());
        }
    }

    @Test
    void blockSizeBreakingTheProtocolIsAViolation() {
        CompletableFuture<Handshake.Negotiated> result = start(options().build());
        channel.writeInbound(greeting(Nbd.IHAVEOPT, GREETING_FLAGS));
        channel.writeInbound(reply(Nbd.OPT_GO, Nbd.REP_INFO,
                info(Nbd.INFO_BLOCK_SIZE, Unpooled.buffer().writeInt(3).writeInt(4096).writeInt(1 << 20))));
        NbdException e = failure(result);
        assertEquals(NbdException.Kind.PROTOCOL_VIOLATION, e.kind());
        assertTrue(e.getMessage().contains("power of 2"), e.getMessage());
        assertFalse(channel.isActive());
    }

    @Test
    void ackWithoutInfoExportIsAViolation() {
        CompletableFuture<Handshake.Negotiated> result = start(options().build());
        channel.writeInbound(greeting(Nbd.IHAVEOPT, GREETING_FLAGS));
        channel.writeInbound(reply(Nbd.OPT_GO, Nbd.REP_ACK));
        NbdException e = failure(result);
        assertEquals(NbdException.Kind.PROTOCOL_VIOLATION, e.kind());
        assertTrue(e.getMessage().contains("INFO_EXPORT"), e.getMessage());
    }

    @Test
    void replyForAnotherOptionIsAViolation() {
        CompletableFuture<Handshake.Negotiated> result = start(options().build());
        channel.writeInbound(greeting(Nbd.IHAVEOPT, GREETING_FLAGS));
        channel.writeInbound(reply(Nbd.OPT_LIST, Nbd.REP_ACK));
        NbdException e = failure(result);
        assertEquals(NbdException.Kind.PROTOCOL_VIOLATION, e.kind());
        assertTrue(e.getMessage().contains("LIST") && e.getMessage().contains("GO"), e.getMessage());
    }

    @Test
    void oldstyleServerIsRejectedClearly() {
        CompletableFuture<Handshake.Negotiated> result = start(options().build());
        channel.writeInbound(greeting(0x00420281861253L, 0));
        NbdException e = failure(result);
        assertEquals(NbdException.Kind.PROTOCOL_VIOLATION, e.kind());
        assertTrue(e.getMessage().contains("oldstyle") && e.getMessage().contains(PEER), e.getMessage());
    }

    @Test
    void serverWithoutFixedNewstyleIsRejected() {
        CompletableFuture<Handshake.Negotiated> result = start(options().build());
        channel.writeInbound(greeting(Nbd.IHAVEOPT, 0));
        NbdException e = failure(result);
        assertTrue(e.getMessage().contains("fixed newstyle"), e.getMessage());
    }

    @Test
    void serverClosingMidHandshakeNamesWhatWasAwaited() {
        CompletableFuture<Handshake.Negotiated> result = start(options().build());
        channel.writeInbound(greeting(Nbd.IHAVEOPT, GREETING_FLAGS));
        channel.close();
        NbdException e = failure(result);
        assertEquals(NbdException.Kind.CONNECTION_LOST, e.kind());
        assertTrue(e.getMessage().contains("waiting for the reply to GO"), e.getMessage());
    }
}
