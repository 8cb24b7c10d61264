package io.replstor.nbd.client;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.CompositeByteBuf;
import io.netty.buffer.Unpooled;
import io.replstor.nbd.Nbd;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * A READ. With simple replies the data arrives whole. With structured replies it arrives as pieces in any order:
 *
 * <pre>
 * OFFSET_DATA   offset u64 | data (length - 8 bytes)
 * OFFSET_HOLE   offset u64 | hole size u32                 (12 bytes)
 * </pre>
 *
 * Pieces are kept as retained slices (no copy). When DONE arrives they must tile the requested range exactly;
 * one piece covering it all is returned as is, otherwise the pieces are joined in a {@link CompositeByteBuf}
 * with holes as zero-filled buffers. The caller owns and releases the resulting buffer.
 */
final class ReadRequest extends PendingRequest {
    private static final int OFFSET_HOLE_BYTES = 12;

    /** A piece of the answer; {@code data} is null for a hole. */
    private record Piece(long offset, long length, ByteBuf data) {
    }

    private final CompletableFuture<ByteBuf> future = new CompletableFuture<>();
    private Piece first;
    private List<Piece> more;

    ReadRequest(String where, int flags, long offset, int length) {
        super(where, Nbd.CMD_READ, flags, offset, length);
    }

    @Override
    CompletableFuture<ByteBuf> future() {
        return future;
    }

    @Override
    void onSimpleSuccess(ByteBuf data) {
        deliver(data.retain());
    }

    @Override
    void onContentChunk(int chunkType, ByteBuf payload) {
        if (chunkType == Nbd.REPLY_TYPE_OFFSET_DATA) {
            if (payload.readableBytes() <= ReplyDecoder.OFFSET_DATA_HEADER_BYTES) {
                violation("an OFFSET_DATA chunk without data");
                return;
            }
            long at = payload.readLong();
            int bytes = payload.readableBytes();
            if (inRange(at, bytes, "OFFSET_DATA")) {
                add(new Piece(at, bytes, payload.readRetainedSlice(bytes)));
            }
        } else if (chunkType == Nbd.REPLY_TYPE_OFFSET_HOLE) {
            if (payload.readableBytes() != OFFSET_HOLE_BYTES) {
                violation("an OFFSET_HOLE chunk of " + payload.readableBytes() + " bytes");
                return;
            }
            long at = payload.readLong();
            long bytes = payload.readUnsignedInt();
            if (bytes == 0) {
                violation("an empty OFFSET_HOLE chunk");
            } else if (inRange(at, bytes, "OFFSET_HOLE")) {
                add(new Piece(at, bytes, null));
            }
        } else {
            violation("a chunk of type " + chunkType);
        }
    }

    private boolean inRange(long at, long bytes, String what) {
        if (at < offset || at - offset + bytes > length) {
            violation("an " + what + " chunk for " + bytes + " bytes at offset " + at + ", outside the request");
            return false;
        }
        return true;
    }

    private void add(Piece piece) {
        if (first == null) {
            first = piece;
        } else {
            if (more == null) {
                more = new ArrayList<>();
            }
            more.add(piece);
        }
    }

    @Override
    void complete(ByteBufAllocator alloc) {
        if (first == null) {
            if (length == 0) {
                deliver(Unpooled.EMPTY_BUFFER);
            } else {
                failViolation("no data chunk");
            }
            return;
        }
        if (more == null && first.offset() == offset && first.length() == length) {
            ByteBuf data = first.data() != null ? first.data() : zeroes(alloc, first.length());
            first = null;
            deliver(data);
            return;
        }
        List<Piece> pieces = takePieces();
        pieces.sort(Comparator.comparingLong(Piece::offset));
        String gap = findGap(pieces);
        if (gap != null) {
            pieces.forEach(ReadRequest::release);
            failViolation(gap);
            return;
        }
        CompositeByteBuf joined = alloc.compositeBuffer(pieces.size());
        for (Piece piece : pieces) {
            joined.addComponent(true, piece.data() != null ? piece.data() : zeroes(alloc, piece.length()));
        }
        deliver(joined);
    }

    /** Null if the sorted pieces tile [offset, offset + length), else what is wrong. */
    private String findGap(List<Piece> sorted) {
        long position = offset;
        for (Piece piece : sorted) {
            if (piece.offset() < position) {
                return "chunks overlapping at offset " + piece.offset();
            }
            if (piece.offset() > position) {
                return "no data for offsets " + position + ".." + (piece.offset() - 1);
            }
            position += piece.length();
        }
        return position == offset + length ? null : "no data for offsets " + position + ".." + (offset + length - 1);
    }

    @Override
    void fail(Throwable cause) {
        takePieces().forEach(ReadRequest::release);
        future.completeExceptionally(cause);
    }

    private List<Piece> takePieces() {
        List<Piece> pieces = new ArrayList<>();
        if (first != null) {
            pieces.add(first);
        }
        if (more != null) {
            pieces.addAll(more);
        }
        first = null;
        more = null;
        return pieces;
    }

    private void deliver(ByteBuf data) {
        // A caller may have cancelled the future; the buffer then has no owner but us.
        if (!future.complete(data)) {
            data.release();
        }
    }

    private static ByteBuf zeroes(ByteBufAllocator alloc, long bytes) {
        return alloc.buffer((int) bytes).writeZero((int) bytes);
    }

    private static void release(Piece piece) {
        if (piece.data() != null) {
            piece.data().release();
        }
    }
}
