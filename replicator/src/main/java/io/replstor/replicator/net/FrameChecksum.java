package io.replstor.replicator.net;

import io.netty.buffer.ByteBuf;

import java.nio.ByteBuffer;
import java.util.zip.CRC32C;

/**
 * Computes a frame's CRC32C ({@link PeerFrame}, "Checksums") over a buffer, in place. One instance
 * per encoder or decoder (one thread); it reuses its state and a head-sized scratch array, so a
 * checksum allocates nothing for heap buffers and pooled direct buffers.
 */
final class FrameChecksum {
    private final CRC32C crc = new CRC32C();
    private final byte[] head = new byte[PeerFrame.MAX_HEAD_BYTES];

    /**
     * @param frame       holds the frame at {@code start}
     * @param headBytes   header + fixed fields
     * @param withPayload also cover the payload that follows the head
     * @param payload     the payload buffer (may be {@code frame} itself), read from {@code payloadIndex}
     */
    int compute(ByteBuf frame, int start, int headBytes, boolean withPayload, ByteBuf payload, int payloadIndex,
                int payloadLength) {
        crc.reset();
        frame.getBytes(start, head, 0, headBytes);
        // the checksum field counts as zero
        for (int i = PeerFrame.CHECKSUM_OFFSET; i < PeerFrame.CHECKSUM_OFFSET + Integer.BYTES; i++) {
            head[i] = 0;
        }
        crc.update(head, 0, headBytes);
        if (withPayload && payloadLength > 0) {
            update(payload, payloadIndex, payloadLength);
        }
        return (int) crc.getValue();
    }

    private void update(ByteBuf buf, int index, int length) {
        if (buf.hasArray()) {
            crc.update(buf.array(), buf.arrayOffset() + index, length);
        } else if (buf.nioBufferCount() == 1) {
            // pooled direct buffers hand out a cached view: no allocation
            crc.update(buf.internalNioBuffer(index, length));
        } else {
            for (ByteBuffer b : buf.nioBuffers(index, length)) {
                crc.update(b);
            }
        }
    }
}
