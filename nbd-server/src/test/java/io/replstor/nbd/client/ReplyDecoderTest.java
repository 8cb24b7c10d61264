package io.replstor.nbd.client;

import static io.replstor.nbd.client.ClientTestSupport.pattern;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.DecoderException;
import io.replstor.nbd.Nbd;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/** The transmission reply decoder, fed raw bytes on an {@link EmbeddedChannel}. */
@ExtendWith(LeakCheck.class)
@Timeout(value = 10, unit = TimeUnit.SECONDS)
class ReplyDecoderTest {
    private final Map<Long, Integer> reads = new HashMap<>();
    private final EmbeddedChannel channel = new EmbeddedChannel(
            new ReplyDecoder(cookie -> reads.getOrDefault(cookie, -1)));

    @AfterEach
    void finish() {
        channel.finishAndReleaseAll();
    }

    static ByteBuf simpleReply(int error, long cookie) {
        return Unpooled.buffer().writeInt(Nbd.SIMPLE_REPLY_MAGIC).writeInt(error).writeLong(cookie);
    }

    static ByteBuf chunkHeader(int flags, int type, long cookie, int length) {
        return Unpooled.buffer().writeInt(Nbd.STRUCTURED_REPLY_MAGIC).writeShort(flags).writeShort(type)
                .writeLong(cookie).writeInt(length);
    }

    @Test
    void simpleReadReplyWaitsForAllItsData() {
        reads.put(5L, 1000);
        byte[] data = pattern(1, 1000);
        assertFalse(channel.writeInbound(simpleReply(0, 5).writeBytes(data, 0, 400)));
        assertTrue(channel.writeInbound(Unpooled.wrappedBuffer(data, 400, 600)));
        SimpleReply reply = channel.readInbound();
        try {
            assertEquals(5, reply.cookie());
            assertEquals(0, reply.error());
            assertArrayEquals(data, ByteBufUtil.getBytes(reply.content()));
        } finally {
            reply.release();
        }
    }

    @Test
    void simpleErrorReplyToAReadCarriesNoData() {
        reads.put(5L, 1000);
        channel.writeInbound(Unpooled.wrappedBuffer(simpleReply(Nbd.EINVAL, 5), simpleReply(0, 6)));
        SimpleReply error = channel.readInbound();
        SimpleReply next = channel.readInbound();
        assertEquals(Nbd.EINVAL, error.error());
        assertEquals(0, error.content().readableBytes());
        assertEquals(6, next.cookie());
        error.release();
        next.release();
    }

    @Test
    void chunkSplitByteByByteIsDecodedOnce() {
        ByteBuf bytes = Unpooled.wrappedBuffer(chunkHeader(Nbd.REPLY_FLAG_DONE, Nbd.REPLY_TYPE_OFFSET_DATA, 9, 12),
                Unpooled.buffer().writeLong(4096).writeInt(0xCAFEBABE));
        while (bytes.isReadable()) {
            channel.writeInbound(bytes.readRetainedSlice(1));
        }
        bytes.release();
        ReplyChunk chunk = channel.readInbound();
        try {
            assertNull(channel.readInbound());
            assertEquals(9, chunk.cookie());
            assertEquals(Nbd.REPLY_TYPE_OFFSET_DATA, chunk.type());
            assertTrue(chunk.done());
            assertEquals(4096, chunk.content().readLong());
            assertEquals(0xCAFEBABE, chunk.content().readInt());
        } finally {
            chunk.release();
        }
    }

    @Test
    void badMagicFailsOnceAndThenEverythingIsDiscarded() {
        assertThrows(DecoderException.class, () -> channel.writeInbound(Unpooled.buffer().writeInt(0x12345678)
                .writeZero(12)));
        assertFalse(channel.writeInbound(simpleReply(0, 1)));
        assertNull(channel.readInbound());
    }

    @Test
    void chunkLongerThanItsRequestAllowsIsRejected() {
        reads.put(3L, 512);
        assertThrows(DecoderException.class, () -> channel.writeInbound(
                chunkHeader(0, Nbd.REPLY_TYPE_OFFSET_DATA, 3, ReplyDecoder.MAX_OTHER_CHUNK_BYTES + 1)));
    }
}
