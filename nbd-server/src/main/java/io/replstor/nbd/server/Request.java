package io.replstor.nbd.server;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.replstor.common.io.BlockDevice;
import io.replstor.common.io.StorageException;
import io.replstor.nbd.Nbd;

import java.nio.charset.StandardCharsets;

/**
 * One transmission-phase request. Pooled per connection and reused, so the steady state allocates
 * nothing: the event loop fills it and hands it to an I/O worker; the worker runs the device
 * operation, builds the complete reply in one pooled buffer and hands the request back with
 * {@link TransmissionHandler#complete}; the event loop writes the reply and returns the request
 * to the pool.
 *
 * <p>Reply layouts built here (all big-endian):
 * <pre>
 * simple        SIMPLE_REPLY_MAGIC u32 | error u32 | cookie u64 [| data (READ)]
 * OFFSET_DATA   chunk header(20) | offset u64 | data
 * OFFSET_HOLE   chunk header(20) | offset u64 | hole size u32
 * BLOCK_STATUS  chunk header(20) | context id u32 | n x (length u32 | flags u32)
 * ERROR         chunk header(20) | error u32 | message length u16 | message
 * </pre>
 */
final class Request implements Runnable, BlockDevice.ExtentSink {
    /** Reads at least this long look for holes and send them as OFFSET_HOLE chunks. */
    static final int HOLE_CHECK_MIN_BYTES = 64 << 10;
    /** At most this many extents per BLOCK_STATUS reply or per read split (the client asks again). */
    static final int MAX_EXTENTS = 256;

    final TransmissionHandler conn;

    int type;
    int flags;
    long cookie;
    long offset;
    long length;
    /** WRITE data; owned by this request until the worker releases it. */
    ByteBuf payload;
    /** The encoded reply; owned by this request until the event loop writes it. */
    ByteBuf reply;

    // extents gathered by extents(): pairs of (length, hole?1:0)
    private long[] extents;
    private int extentCount;

    Request(TransmissionHandler conn) {
        this.conn = conn;
    }

    void reset() {
        payload = null;
        reply = null;
        extentCount = 0;
    }

    /** Runs on an I/O worker. */
    /** The end of an asynchronous write (any thread). */
    private void writeCompleted(StorageException e) {
        ByteBufAllocator alloc = conn.alloc();
        if (e == null) {
            conn.stats().bytesWritten.add(length);
            reply = simpleReply(alloc, 0);
        } else {
            conn.stats().errors.increment();
            reply = errorReply(alloc, errno(e.kind()), e.getMessage());
            if (e.kind() == StorageException.Kind.IO) {
                conn.logIoError(this, e);
            }
        }
        conn.complete(this);
    }

    @Override
    public void run() {
        NbdExport export = conn.export();
        BlockDevice device = export.device();
        ByteBufAllocator alloc = conn.alloc();
        try {
            boolean fua = (flags & Nbd.CMD_FLAG_FUA) != 0;
            switch (type) {
                case Nbd.CMD_READ -> read(device, alloc);
                case Nbd.CMD_WRITE -> {
                    if (device.asyncWrites()) {
                        // from the call on, this request may be completed (and reused) by another thread:
                        // touch none of its fields after it
                        ByteBuf data = payload;
                        payload = null;
                        try {
                            device.writeAsync(offset, data, fua, this::writeCompleted);
                        } finally {
                            data.release();
                        }
                        return; // writeCompleted finishes the request
                    }
                    try {
                        device.write(offset, payload, fua);
                    } finally {
                        payload.release();
                        payload = null;
                    }
                    conn.stats().bytesWritten.add(length);
                    reply = simpleReply(alloc, 0);
                }
                case Nbd.CMD_FLUSH -> {
                    device.flush();
                    reply = simpleReply(alloc, 0);
                }
                case Nbd.CMD_TRIM -> {
                    device.trim(offset, length, fua);
                    reply = simpleReply(alloc, 0);
                }
                case Nbd.CMD_WRITE_ZEROES -> {
                    device.writeZeroes(offset, length, (flags & Nbd.CMD_FLAG_NO_HOLE) != 0,
                            (flags & Nbd.CMD_FLAG_FAST_ZERO) != 0, fua);
                    reply = simpleReply(alloc, 0);
                }
                case Nbd.CMD_CACHE -> {
                    device.cache(offset, length);
                    reply = simpleReply(alloc, 0);
                }
                case Nbd.CMD_BLOCK_STATUS -> blockStatus(device, alloc);
                default -> throw new IllegalStateException("undispatchable command " + type);
            }
        } catch (StorageException e) {
            releaseReplyAndPayload();
            conn.stats().errors.increment();
            reply = errorReply(alloc, errno(e.kind()), e.getMessage());
            if (e.kind() == StorageException.Kind.IO) {
                conn.logIoError(this, e);
            }
        } catch (RuntimeException e) {
            releaseReplyAndPayload();
            conn.stats().errors.increment();
            conn.logIoError(this, e);
            reply = errorReply(alloc, Nbd.EIO, "internal error: " + e);
        }
        conn.complete(this);
    }

    private void releaseReplyAndPayload() {
        if (reply != null) {
            reply.release();
            reply = null;
        }
        if (payload != null) {
            payload.release();
            payload = null;
        }
    }

    private void read(BlockDevice device, ByteBufAllocator alloc) throws StorageException {
        int len = (int) length;
        conn.stats().bytesRead.add(len);
        if (!conn.structuredReplies()) {
            ByteBuf buf = alloc.directBuffer(Nbd.SIMPLE_REPLY_HEADER_BYTES + len);
            try {
                buf.writerIndex(Nbd.SIMPLE_REPLY_HEADER_BYTES);
                device.read(offset, len, buf);
                buf.setInt(0, Nbd.SIMPLE_REPLY_MAGIC).setInt(4, 0).setLong(8, cookie);
            } catch (StorageException | RuntimeException e) {
                buf.release();
                throw e;
            }
            reply = buf;
            return;
        }
        long dataStart = offset;
        if (len >= HOLE_CHECK_MIN_BYTES && (flags & Nbd.CMD_FLAG_DF) == 0) {
            dataStart = device.dataStart(offset, len);
        }
        if (dataStart == offset) {
            reply = dataChunk(alloc, device, offset, len);
        } else {
            readAfterHole(device, alloc, len, (int) (dataStart - offset));
        }
    }

    /** A structured read that starts with a hole: OFFSET_HOLE, then OFFSET_DATA for the rest if any. */
    private void readAfterHole(BlockDevice device, ByteBufAllocator alloc, int len, int hole)
            throws StorageException {
        int data = len - hole;
        int size = Nbd.CHUNK_HEADER_BYTES + 12 + (data > 0 ? Nbd.CHUNK_HEADER_BYTES + 8 + data : 0);
        ByteBuf buf = alloc.directBuffer(size);
        try {
            chunkHeader(buf, data > 0 ? 0 : Nbd.REPLY_FLAG_DONE, Nbd.REPLY_TYPE_OFFSET_HOLE, 12);
            buf.writeLong(offset).writeInt(hole);
            if (data > 0) {
                chunkHeader(buf, Nbd.REPLY_FLAG_DONE, Nbd.REPLY_TYPE_OFFSET_DATA, 8 + data);
                buf.writeLong(offset + hole);
                device.read(offset + hole, data, buf);
            }
        } catch (StorageException | RuntimeException e) {
            buf.release();
            throw e;
        }
        reply = buf;
    }

    /** A whole structured read in one OFFSET_DATA chunk that ends the reply. */
    private ByteBuf dataChunk(ByteBufAllocator alloc, BlockDevice device, long off, int len)
            throws StorageException {
        ByteBuf buf = alloc.directBuffer(Nbd.CHUNK_HEADER_BYTES + 8 + len);
        try {
            chunkHeader(buf, Nbd.REPLY_FLAG_DONE, Nbd.REPLY_TYPE_OFFSET_DATA, 8 + len);
            buf.writeLong(off);
            device.read(off, len, buf);
        } catch (StorageException | RuntimeException e) {
            buf.release();
            throw e;
        }
        return buf;
    }

    private void blockStatus(BlockDevice device, ByteBufAllocator alloc) throws StorageException {
        extentCount = 0;
        boolean reqOne = (flags & Nbd.CMD_FLAG_REQ_ONE) != 0;
        device.extents(offset, length, reqOne ? this::firstExtent : this);
        if (extentCount == 0) {
            // a device that reported nothing: "allocated, contents unknown" is always true
            ensureExtents();
            extents[0] = length;
            extents[1] = 0;
            extentCount = 1;
        }
        ByteBuf buf = alloc.directBuffer(Nbd.CHUNK_HEADER_BYTES + 4 + 8 * extentCount);
        chunkHeader(buf, Nbd.REPLY_FLAG_DONE, Nbd.REPLY_TYPE_BLOCK_STATUS, 4 + 8 * extentCount);
        buf.writeInt(Session.BASE_ALLOCATION_ID);
        for (int i = 0; i < extentCount; i++) {
            buf.writeInt((int) extents[2 * i]);
            buf.writeInt(extents[2 * i + 1] != 0 ? Nbd.STATE_HOLE | Nbd.STATE_ZERO : 0);
        }
        reply = buf;
    }

    private boolean firstExtent(long len, boolean hole) {
        extent(len, hole);
        return false;
    }

    /** Collects extents; merges neighbours of the same kind; stops at {@link #MAX_EXTENTS}. */
    @Override
    public boolean extent(long len, boolean hole) {
        if (len <= 0) {
            return true;
        }
        ensureExtents();
        long h = hole ? 1 : 0;
        if (extentCount > 0 && extents[2 * extentCount - 1] == h) {
            extents[2 * extentCount - 2] += len;
        } else {
            extents[2 * extentCount] = len;
            extents[2 * extentCount + 1] = h;
            extentCount++;
        }
        return extentCount < MAX_EXTENTS;
    }

    private void ensureExtents() {
        if (extents == null) {
            extents = new long[2 * MAX_EXTENTS + 2];
        }
    }

    ByteBuf simpleReply(ByteBufAllocator alloc, int error) {
        ByteBuf buf = alloc.directBuffer(Nbd.SIMPLE_REPLY_HEADER_BYTES);
        return buf.writeInt(Nbd.SIMPLE_REPLY_MAGIC).writeInt(error).writeLong(cookie);
    }

    /** An error reply: a structured ERROR chunk with a message when negotiated, else a simple reply. */
    ByteBuf errorReply(ByteBufAllocator alloc, int error, String message) {
        if (!conn.structuredReplies()) {
            return simpleReply(alloc, error);
        }
        byte[] msg = message == null ? new byte[0] : message.getBytes(StandardCharsets.UTF_8);
        int msgLen = Math.min(msg.length, 4096);
        ByteBuf buf = alloc.directBuffer(Nbd.CHUNK_HEADER_BYTES + 6 + msgLen);
        chunkHeader(buf, Nbd.REPLY_FLAG_DONE, Nbd.REPLY_TYPE_ERROR, 6 + msgLen);
        return buf.writeInt(error).writeShort(msgLen).writeBytes(msg, 0, msgLen);
    }

    /** A structured read of zero bytes: one NONE chunk that ends the reply. */
    ByteBuf emptyStructuredReply(ByteBufAllocator alloc) {
        ByteBuf buf = alloc.directBuffer(Nbd.CHUNK_HEADER_BYTES);
        chunkHeader(buf, Nbd.REPLY_FLAG_DONE, Nbd.REPLY_TYPE_NONE, 0);
        return buf;
    }

    private void chunkHeader(ByteBuf buf, int chunkFlags, int chunkType, int len) {
        buf.writeInt(Nbd.STRUCTURED_REPLY_MAGIC).writeShort(chunkFlags).writeShort(chunkType).writeLong(cookie)
                .writeInt(len);
    }

    static int errno(StorageException.Kind kind) {
        return switch (kind) {
            case IO -> Nbd.EIO;
            case NO_SPACE -> Nbd.ENOSPC;
            case READ_ONLY -> Nbd.EPERM;
            case INVALID -> Nbd.EINVAL;
            case NOT_SUPPORTED -> Nbd.ENOTSUP;
            case SHUTDOWN -> Nbd.ESHUTDOWN;
        };
    }

    String describe() {
        return Nbd.commandName(type) + " offset=" + offset + " length=" + length + " flags=0x"
                + Integer.toHexString(flags);
    }
}
