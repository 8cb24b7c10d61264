package io.replstor.common.io;

import io.netty.buffer.ByteBuf;
import io.replstor.common.nativeio.LibC;
import io.replstor.common.nativeio.NativeFile;
import io.replstor.common.nativeio.NativeFile.NativeException;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Locale;

/**
 * A {@link BlockDevice} over a regular file or a block device.
 *
 * <p>Data moves with pread/pwrite straight between the file and the caller's direct buffers
 * ({@link NativeFile}), so nothing is copied in user space and concurrent I/O threads share no lock;
 * buffers without a native address (heap, composite) go through {@link FileChannel}. FUA writes go
 * through a second descriptor opened with O_DSYNC, so only that write is made durable, not the whole
 * file. FLUSH is fdatasync. Hole punching, zeroing, allocation queries, discard and read-ahead go
 * through {@link NativeFile} too.
 */
public final class FileBackingStore implements BlockDevice {
    private static final int ZERO_CHUNK = 1 << 20;
    private static final ByteBuffer ZEROES = ByteBuffer.allocateDirect(ZERO_CHUNK).asReadOnlyBuffer();

    private final String name;
    private final Path path;
    private final boolean readOnly;
    private final boolean blockDevice;
    private final long sizeBytes;
    private final FileChannel data;
    private final FileChannel dsync;
    private final NativeFile nat;
    private final NativeFile natDsync;
    private volatile boolean canPunch;
    private volatile boolean canZeroRange;

    private FileBackingStore(String name, Path path, boolean readOnly, boolean blockDevice, long sizeBytes,
                             FileChannel data, FileChannel dsync, NativeFile nat, NativeFile natDsync) {
        this.name = name;
        this.path = path;
        this.readOnly = readOnly;
        this.blockDevice = blockDevice;
        this.sizeBytes = sizeBytes;
        this.data = data;
        this.dsync = dsync;
        this.nat = nat;
        this.natDsync = natDsync;
        this.canPunch = !readOnly;
        this.canZeroRange = !readOnly;
    }

    /**
     * Opens {@code path}. A missing regular file is created sparse with {@code createSizeBytes}
     * (if that is positive; otherwise a missing file is an error). An existing file of a different
     * size than a positive {@code createSizeBytes} is an error: silently resizing a volume loses data.
     */
    public static FileBackingStore open(String name, Path path, boolean readOnly, long createSizeBytes)
            throws IOException {
        boolean exists = Files.exists(path);
        if (!exists) {
            if (createSizeBytes <= 0) {
                throw new IOException("export '" + name + "': backing file " + path
                        + " does not exist (give a size to create it)");
            }
            if (readOnly) {
                throw new IOException("export '" + name + "': backing file " + path
                        + " does not exist and the export is read-only");
            }
            Files.createFile(path); // fails if someone else created it meanwhile
            try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(path.toFile(), "rw")) {
                f.setLength(createSizeBytes); // ftruncate: the whole file is one hole
            }
        }
        boolean regular = Files.isRegularFile(path);
        if (!regular && Files.isDirectory(path)) {
            throw new IOException("export '" + name + "': " + path + " is a directory, not a file or block device");
        }
        FileChannel data = readOnly
                ? FileChannel.open(path, StandardOpenOption.READ)
                : FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE);
        FileChannel dsync = null;
        NativeFile nat = null;
        NativeFile natDsync = null;
        try {
            dsync = readOnly ? null : FileChannel.open(path, StandardOpenOption.WRITE, StandardOpenOption.DSYNC);
            nat = NativeFile.open(path, readOnly);
            natDsync = readOnly ? null : NativeFile.open(path, false, true);
            long size = regular ? data.size() : nat.blockDeviceSize();
            if (exists && createSizeBytes > 0 && size != createSizeBytes) {
                throw new IOException("export '" + name + "': " + path + " is " + size + " bytes but the export says "
                        + createSizeBytes + " bytes; resize the file or fix the size");
            }
            return new FileBackingStore(name, path, readOnly, !regular, size, data, dsync, nat, natDsync);
        } catch (IOException | RuntimeException e) {
            closeQuietly(data);
            closeQuietly(dsync);
            if (nat != null) {
                nat.close();
            }
            if (natDsync != null) {
                natDsync.close();
            }
            throw e;
        }
    }

    @Override
    public String name() {
        return name;
    }

    public Path path() {
        return path;
    }

    @Override
    public long sizeBytes() {
        return sizeBytes;
    }

    @Override
    public boolean readOnly() {
        return readOnly;
    }

    @Override
    public boolean canTrim() {
        return !readOnly;
    }

    @Override
    public boolean canFastZero() {
        return !readOnly && (blockDevice || canPunch || canZeroRange);
    }

    @Override
    public void read(long offset, int length, ByteBuf dst) throws StorageException {
        int index = dst.writerIndex();
        dst.ensureWritable(length);
        try {
            if (dst.hasMemoryAddress()) {
                nat.preadFully(dst.memoryAddress() + index, length, offset);
            } else if (dst.nioBufferCount() == 1) {
                readFully(dst.internalNioBuffer(index, length), offset);
            } else {
                long pos = offset;
                for (ByteBuffer bb : dst.nioBuffers(index, length)) {
                    pos += readFully(bb, pos);
                }
            }
        } catch (IOException e) {
            throw failure("read", offset, length, e);
        }
        dst.writerIndex(index + length);
    }

    private int readFully(ByteBuffer bb, long pos) throws IOException {
        int want = bb.remaining();
        while (bb.hasRemaining()) {
            int n = data.read(bb, pos + want - bb.remaining());
            if (n < 0) {
                // past the end of a file that is shorter than the export: reads as zeroes
                while (bb.hasRemaining()) {
                    bb.put((byte) 0);
                }
            }
        }
        return want;
    }

    @Override
    public void write(long offset, ByteBuf src, boolean fua) throws StorageException {
        checkWritable("write", offset);
        FileChannel ch = fua ? dsync : data;
        int length = src.readableBytes();
        try {
            if (src.hasMemoryAddress()) {
                (fua ? natDsync : nat).pwriteFully(src.memoryAddress() + src.readerIndex(), length, offset);
            } else if (src.nioBufferCount() == 1) {
                writeFully(ch, src.internalNioBuffer(src.readerIndex(), length), offset);
            } else {
                long pos = offset;
                for (ByteBuffer bb : src.nioBuffers(src.readerIndex(), length)) {
                    pos += writeFully(ch, bb, pos);
                }
            }
        } catch (IOException e) {
            throw failure("write", offset, length, e);
        }
    }

    private static int writeFully(FileChannel ch, ByteBuffer bb, long pos) throws IOException {
        int want = bb.remaining();
        while (bb.hasRemaining()) {
            ch.write(bb, pos + want - bb.remaining());
        }
        return want;
    }

    @Override
    public void flush() throws StorageException {
        if (readOnly) {
            return;
        }
        try {
            nat.fdatasync();
        } catch (IOException e) {
            throw failure("flush", 0, 0, e);
        }
    }

    @Override
    public void trim(long offset, long length, boolean fua) throws StorageException {
        checkWritable("trim", offset);
        try {
            if (blockDevice) {
                nat.blockRangeIoctl(LibC.BLKDISCARD, offset, length);
            } else if (canPunch) {
                nat.fallocate(LibC.FALLOC_FL_PUNCH_HOLE | LibC.FALLOC_FL_KEEP_SIZE, offset, length);
            }
        } catch (NativeException e) {
            if (e.notSupported()) {
                canPunch = false; // trim is advisory: doing nothing is a valid answer
            } else {
                throw failure("trim", offset, length, e);
            }
        }
        if (fua) {
            flush();
        }
    }

    @Override
    public void writeZeroes(long offset, long length, boolean noHole, boolean fastOnly, boolean fua)
            throws StorageException {
        checkWritable("write-zeroes", offset);
        try {
            if (!zeroFast(offset, length, noHole)) {
                if (fastOnly) {
                    throw new StorageException(StorageException.Kind.NOT_SUPPORTED,
                            "export '" + name + "': fast zeroing is not supported by " + path);
                }
                writeZeroBuffers(offset, length);
            }
        } catch (IOException e) {
            if (e instanceof StorageException se) {
                throw se;
            }
            throw failure("write-zeroes", offset, length, e);
        }
        if (fua) {
            flush();
        }
    }

    /** @return true if the range was zeroed without writing zero buffers */
    private boolean zeroFast(long offset, long length, boolean noHole) throws NativeException {
        if (blockDevice) {
            nat.blockRangeIoctl(LibC.BLKZEROOUT, offset, length);
            return true;
        }
        if (!noHole && canPunch) {
            try {
                nat.fallocate(LibC.FALLOC_FL_PUNCH_HOLE | LibC.FALLOC_FL_KEEP_SIZE, offset, length);
                return true;
            } catch (NativeException e) {
                if (!e.notSupported()) {
                    throw e;
                }
                canPunch = false;
            }
        }
        if (canZeroRange) {
            try {
                nat.fallocate(LibC.FALLOC_FL_ZERO_RANGE | LibC.FALLOC_FL_KEEP_SIZE, offset, length);
                return true;
            } catch (NativeException e) {
                if (!e.notSupported()) {
                    throw e;
                }
                canZeroRange = false;
            }
        }
        return false;
    }

    private void writeZeroBuffers(long offset, long length) throws IOException {
        long done = 0;
        while (done < length) {
            ByteBuffer z = ZEROES.duplicate();
            z.limit((int) Math.min(ZERO_CHUNK, length - done));
            done += writeFully(data, z, offset + done);
        }
    }

    @Override
    public void cache(long offset, long length) {
        nat.adviseWillNeed(offset, length);
    }

    @Override
    public void extents(long offset, long length, ExtentSink sink) throws StorageException {
        long end = offset + length;
        if (blockDevice) {
            sink.extent(length, false);
            return;
        }
        try {
            long pos = offset;
            while (pos < end) {
                long dataStart = nat.seek(pos, LibC.SEEK_DATA);
                if (dataStart < 0 || dataStart >= end) {
                    sink.extent(end - pos, true);
                    return;
                }
                if (dataStart > pos) {
                    if (!sink.extent(dataStart - pos, true)) {
                        return;
                    }
                    pos = dataStart;
                }
                long holeStart = Math.min(nat.seek(pos, LibC.SEEK_HOLE), end);
                if (holeStart < 0) {
                    holeStart = end;
                }
                if (!sink.extent(holeStart - pos, false)) {
                    return;
                }
                pos = holeStart;
            }
        } catch (NativeException e) {
            if (e.notSupported()) {
                sink.extent(end - offset, false); // no allocation information: all data is always safe
                return;
            }
            throw failure("block-status", offset, length, e);
        }
    }

    /**
     * One SEEK_DATA: cheap on every file system we know, unlike SEEK_HOLE, whose cost grows with the
     * length of the data run it has to walk (tmpfs scans page by page).
     */
    @Override
    public long dataStart(long offset, long length) throws StorageException {
        if (blockDevice) {
            return offset;
        }
        try {
            long d = nat.seek(offset, LibC.SEEK_DATA);
            return d < 0 ? offset + length : Math.min(d, offset + length);
        } catch (NativeException e) {
            if (e.notSupported()) {
                return offset;
            }
            throw failure("seek-data", offset, length, e);
        }
    }

    @Override
    public void close() {
        closeQuietly(data);
        closeQuietly(dsync);
        nat.close();
        if (natDsync != null) {
            natDsync.close();
        }
    }

    private void checkWritable(String op, long offset) throws StorageException {
        if (readOnly) {
            throw new StorageException(StorageException.Kind.READ_ONLY,
                    "export '" + name + "' is read-only: " + op + " at offset " + offset + " refused");
        }
    }

    private StorageException failure(String op, long offset, long length, IOException e) {
        boolean noSpace = e instanceof NativeException ne ? ne.noSpace() : isNoSpace(e.getMessage());
        StorageException.Kind kind = noSpace ? StorageException.Kind.NO_SPACE : StorageException.Kind.IO;
        return new StorageException(kind, "export '" + name + "': " + op + " of " + length + " bytes at offset "
                + offset + " on " + path + " failed: " + e.getMessage(), e);
    }

    /** The JDK reports ENOSPC/EDQUOT/EFBIG only through strerror text. */
    private static boolean isNoSpace(String message) {
        if (message == null) {
            return false;
        }
        String m = message.toLowerCase(Locale.ROOT);
        return m.contains("no space left") || m.contains("quota exceeded") || m.contains("file too large");
    }

    private static void closeQuietly(FileChannel ch) {
        if (ch != null) {
            try {
                ch.close();
            } catch (IOException ignored) {
                // closing a channel we no longer use: nothing to recover
            }
        }
    }
}
