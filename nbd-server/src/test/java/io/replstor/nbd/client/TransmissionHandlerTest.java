package io.replstor.nbd.client;

import static io.replstor.nbd.client.ClientTestSupport.failure;
import static io.replstor.nbd.client.ClientTestSupport.pattern;
import static io.replstor.nbd.client.ReplyDecoderTest.chunkHeader;
import static io.replstor.nbd.client.ReplyDecoderTest.simpleReply;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.replstor.nbd.Nbd;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/** Cookie matching, structured-reply assembly and connection loss, with a scripted server on an EmbeddedChannel. */
@ExtendWith(LeakCheck.class)
@Timeout(value = 10, unit = TimeUnit.SECONDS)
class TransmissionHandlerTest {
    private static final String WHERE = "test:10809 (export '')";
    private final TransmissionHandler handler = new TransmissionHandler(WHERE);
    private final EmbeddedChannel channel = new EmbeddedChannel(new ReplyDecoder(handler), handler);

    @AfterEach
    void finish() {
        channel.finishAndReleaseAll();
    }

    /** Submits and returns the cookie the handler put on the wire (checking the header and WRITE payload). */
    private long submit(PendingRequest request, ByteBuf payload) {
        int payloadBytes = payload == null ? 0 : payload.readableBytes();
        handler.submit(request, payload);
        channel.runPendingTasks();
        ByteBuf header = channel.readOutbound();
        try {
            assertEquals(Nbd.REQUEST_HEADER_BYTES, header.readableBytes());
            assertEquals(Nbd.REQUEST_MAGIC, header.getInt(RequestHeader.MAGIC_OFFSET));
            assertEquals(request.type, header.getUnsignedShort(RequestHeader.TYPE_OFFSET));
            assertEquals(request.offset, header.getLong(RequestHeader.OFFSET_OFFSET));
            assertEquals(request.length, header.getUnsignedInt(RequestHeader.LENGTH_OFFSET));
            if (payloadBytes > 0) {
                ByteBuf data = channel.readOutbound();
                assertEquals(payloadBytes, data.readableBytes());
                data.release();
            }
            return header.getLong(RequestHeader.COOKIE_OFFSET);
        } finally {
            header.release();
        }
    }

    private static ByteBuf dataChunk(int flags, long cookie, long offset, byte[] data) {
        return Unpooled.wrappedBuffer(chunkHeader(flags, Nbd.REPLY_TYPE_OFFSET_DATA, cookie, 8 + data.length),
                Unpooled.buffer(8).writeLong(offset), Unpooled.wrappedBuffer(data));
    }

    private static ByteBuf holeChunk(int flags, long cookie, long offset, int size) {
        return Unpooled.wrappedBuffer(chunkHeader(flags, Nbd.REPLY_TYPE_OFFSET_HOLE, cookie, 12),
                Unpooled.buffer(12).writeLong(offset).writeInt(size));
    }

    private static ByteBuf noneChunk(long cookie) {
        return chunkHeader(Nbd.REPLY_FLAG_DONE, Nbd.REPLY_TYPE_NONE, cookie, 0);
    }

    @Test
    void structuredReadAssemblesOutOfOrderDataAndHoleChunks() throws Exception {
        ReadRequest read = new ReadRequest(WHERE, 0, 4096, 12288);
        long cookie = submit(read, null);
        byte[] first = pattern(1, 4096);
        byte[] last = pattern(3, 4096);
        channel.writeInbound(dataChunk(0, cookie, 4096 + 8192, last));
        channel.writeInbound(holeChunk(0, cookie, 4096 + 4096, 4096));
        assertFalse(read.future().isDone());
        channel.writeInbound(dataChunk(Nbd.REPLY_FLAG_DONE, cookie, 4096, first));
        ByteBuf data = read.future().getNow(null);
        try {
            byte[] expected = new byte[12288];
            System.arraycopy(first, 0, expected, 0, 4096);
            System.arraycopy(last, 0, expected, 8192, 4096);
            assertArrayEquals(expected, ByteBufUtil.getBytes(data));
        } finally {
            data.release();
        }
    }

    @Test
    void readAnsweredByOneHoleIsZeroes() throws Exception {
        ReadRequest read = new ReadRequest(WHERE, 0, 0, 8192);
        long cookie = submit(read, null);
        channel.writeInbound(holeChunk(Nbd.REPLY_FLAG_DONE, cookie, 0, 8192));
        ByteBuf data = read.future().getNow(null);
        assertArrayEquals(new byte[8192], ByteBufUtil.getBytes(data));
        data.release();
    }

    @Test
    void errorChunkFailsTheReadWithErrnoAndServerMessage() throws Exception {
        ReadRequest read = new ReadRequest(WHERE, 0, 0, 8192);
        long cookie = submit(read, null);
        byte[] message = "disk on fire".getBytes(StandardCharsets.UTF_8);
        channel.writeInbound(dataChunk(0, cookie, 0, pattern(1, 4096)));
        channel.writeInbound(Unpooled.wrappedBuffer(
                chunkHeader(0, Nbd.REPLY_TYPE_ERROR_OFFSET, cookie, 6 + message.length + 8),
                Unpooled.buffer().writeInt(Nbd.EIO).writeShort(message.length).writeBytes(message).writeLong(4096)));
        channel.writeInbound(noneChunk(cookie));
        NbdException e = failure(read.future());
        assertEquals(NbdException.Kind.ERROR_REPLY, e.kind());
        assertEquals(Nbd.EIO, e.errno());
        assertEquals("disk on fire (at offset 4096)", e.serverMessage());
        assertTrue(e.getMessage().contains("READ offset 0 length 8192") && e.getMessage().contains("EIO")
                && e.getMessage().contains(WHERE), e.getMessage());
    }

    @Test
    void chunksLeavingAGapFailTheRequestButNotTheConnection() throws Exception {
        ReadRequest read = new ReadRequest(WHERE, 0, 0, 8192);
        long cookie = submit(read, null);
        channel.writeInbound(dataChunk(Nbd.REPLY_FLAG_DONE, cookie, 4096, pattern(1, 4096)));
        NbdException e = failure(read.future());
        assertEquals(NbdException.Kind.PROTOCOL_VIOLATION, e.kind());
        assertTrue(e.getMessage().contains("no data for offsets 0..4095"), e.getMessage());
        CommandRequest flush = new CommandRequest(WHERE, Nbd.CMD_FLUSH, 0, 0, 0);
        channel.writeInbound(simpleReply(0, submit(flush, null)));
        assertTrue(flush.future().isDone() && !flush.future().isCompletedExceptionally());
    }

    @Test
    void repliesInAnyOrderCompleteTheirOwnRequests() throws Exception {
        CommandRequest a = new CommandRequest(WHERE, Nbd.CMD_WRITE, 0, 0, 512);
        CommandRequest b = new CommandRequest(WHERE, Nbd.CMD_TRIM, 0, 4096, 512);
        ReadRequest c = new ReadRequest(WHERE, 0, 8192, 16);
        long cookieA = submit(a, Unpooled.buffer(512).writeZero(512));
        long cookieB = submit(b, null);
        long cookieC = submit(c, null);
        assertEquals(3, List.of(cookieA, cookieB, cookieC).stream().distinct().count());
        channel.writeInbound(Unpooled.wrappedBuffer(simpleReply(0, cookieC).writeBytes(pattern(4, 16)),
                simpleReply(Nbd.EPERM, cookieB), simpleReply(0, cookieA)));
        assertTrue(a.future().isDone() && !a.future().isCompletedExceptionally());
        assertEquals(Nbd.EPERM, failure(b.future()).errno());
        ByteBuf data = c.future().getNow(null);
        assertArrayEquals(pattern(4, 16), ByteBufUtil.getBytes(data));
        data.release();
    }

    @Test
    void replyWithAnUnknownCookieIsCountedAndDropped() {
        channel.writeInbound(simpleReply(0, 777));
        channel.writeInbound(dataChunk(Nbd.REPLY_FLAG_DONE, 778, 0, pattern(1, 100)));
        assertEquals(2, handler.unmatchedReplies());
        assertTrue(channel.isActive());
    }

    @Test
    void blockStatusUsesTheBaseAllocationChunkOnly() throws Exception {
        BlockStatusRequest status = new BlockStatusRequest(WHERE, 0, 0, 1 << 20, true, 7);
        long cookie = submit(status, null);
        channel.writeInbound(Unpooled.wrappedBuffer(chunkHeader(0, Nbd.REPLY_TYPE_BLOCK_STATUS, cookie, 12),
                Unpooled.buffer().writeInt(3).writeInt(1 << 20).writeInt(1)));
        channel.writeInbound(Unpooled.wrappedBuffer(chunkHeader(Nbd.REPLY_FLAG_DONE, Nbd.REPLY_TYPE_BLOCK_STATUS,
                cookie, 20), Unpooled.buffer().writeInt(7).writeInt(65536).writeInt(0).writeInt(983040).writeInt(3)));
        assertEquals(List.of(new Extent(65536, 0), new Extent(983040, 3)), status.future().getNow(null));
    }

    @Test
    void closingTheConnectionFailsEveryRequestInFlight() throws Exception {
        ReadRequest read = new ReadRequest(WHERE, 0, 0, 4096);
        CommandRequest flush = new CommandRequest(WHERE, Nbd.CMD_FLUSH, 0, 0, 0);
        submit(read, null);
        submit(flush, null);
        channel.close();
        assertEquals(NbdException.Kind.CONNECTION_LOST, failure(read.future()).kind());
        assertEquals(NbdException.Kind.CONNECTION_LOST, failure(flush.future()).kind());
        assertTrue(handler.closed().isDone());
    }

    @Test
    void badReplyMagicClosesTheConnectionAsAProtocolViolation() throws Exception {
        ReadRequest read = new ReadRequest(WHERE, 0, 0, 4096);
        submit(read, null);
        channel.writeInbound(Unpooled.buffer().writeInt(0x0BADF00D).writeZero(12));
        NbdException e = failure(read.future());
        assertEquals(NbdException.Kind.PROTOCOL_VIOLATION, e.kind());
        assertTrue(e.getMessage().contains("0x0badf00d"), e.getMessage());
        assertFalse(channel.isActive());
    }

    @Test
    void closeSendsDiscOnlyAfterTheLastReply() throws Exception {
        ReadRequest read = new ReadRequest(WHERE, 0, 0, 4);
        long cookie = submit(read, null);
        handler.beginClose();
        channel.runPendingTasks();
        assertNull(channel.readOutbound());
        CommandRequest late = new CommandRequest(WHERE, Nbd.CMD_FLUSH, 0, 0, 0);
        handler.submit(late, null);
        assertEquals(NbdException.Kind.CLOSED, failure(late.future()).kind());
        channel.writeInbound(simpleReply(0, cookie).writeInt(42));
        read.future().getNow(null).release();
        ByteBuf disc = channel.readOutbound();
        assertEquals(Nbd.CMD_DISC, disc.getUnsignedShort(RequestHeader.TYPE_OFFSET));
        disc.release();
        channel.runPendingTasks();
        assertFalse(channel.isOpen());
    }
}
