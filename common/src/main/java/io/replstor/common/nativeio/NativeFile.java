package io.replstor.common.nativeio;

import jnr.ffi.Runtime;
import jnr.ffi.byref.LongLongByReference;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A file descriptor for the operations {@link java.nio.channels.FileChannel} does not offer:
 * hole punching and zeroing (fallocate), allocation queries (SEEK_DATA/SEEK_HOLE), block-device
 * size, discard and zero-out (ioctl), and read-ahead (posix_fadvise). Every failure becomes a
 * {@link NativeException} carrying the errno and the path.
 */
public final class NativeFile implements AutoCloseable {
    private static final LibC C = LibC.INSTANCE;
    private static final Runtime RT = Runtime.getRuntime(C);

    private final Path path;
    private final int fd;

    private NativeFile(Path path, int fd) {
        this.path = path;
        this.fd = fd;
    }

    public static NativeFile open(Path path, boolean readOnly) throws NativeException {
        return open(path, readOnly, false);
    }

    /** @param dsync open with O_DSYNC: every write is durable when it returns (FUA) */
    public static NativeFile open(Path path, boolean readOnly, boolean dsync) throws NativeException {
        int flags = (readOnly ? LibC.O_RDONLY : LibC.O_RDWR) | LibC.O_CLOEXEC | (dsync ? LibC.O_DSYNC : 0);
        int fd = C.open(path.toString(), flags, 0);
        if (fd < 0) {
            throw error("open", path, RT.getLastError());
        }
        return new NativeFile(path, fd);
    }

    public Path path() {
        return path;
    }

    /**
     * Reads exactly {@code count} bytes at {@code offset} into native memory; bytes past the end of
     * the file read as zeroes.
     *
     * <p>Why not FileChannel: its positional read and write enter a synchronized section of the
     * channel twice per call (NativeThreadSet), so I/O threads sharing one file contend on a monitor.
     */
    public void preadFully(long address, int count, long offset) throws NativeException {
        long done = 0;
        while (done < count) {
            long n = C.pread(fd, address + done, count - done, offset + done);
            if (n < 0) {
                int errno = RT.getLastError();
                if (errno == LibC.EINTR) {
                    continue;
                }
                throw error("pread(offset=" + (offset + done) + ", length=" + (count - done) + ")", path, errno);
            }
            if (n == 0) {
                io.netty.util.internal.PlatformDependent.setMemory(address + done, count - done, (byte) 0);
                return;
            }
            done += n;
        }
    }

    /** Writes exactly {@code count} bytes from native memory at {@code offset}. */
    public void pwriteFully(long address, int count, long offset) throws NativeException {
        long done = 0;
        while (done < count) {
            long n = C.pwrite(fd, address + done, count - done, offset + done);
            if (n < 0) {
                int errno = RT.getLastError();
                if (errno == LibC.EINTR) {
                    continue;
                }
                throw error("pwrite(offset=" + (offset + done) + ", length=" + (count - done) + ")", path, errno);
            }
            done += n;
        }
    }

    public void fdatasync() throws NativeException {
        int rc;
        do {
            rc = C.fdatasync(fd);
        } while (rc < 0 && RT.getLastError() == LibC.EINTR);
        if (rc < 0) {
            throw error("fdatasync", path, RT.getLastError());
        }
    }

    public void fallocate(int mode, long offset, long length) throws NativeException {
        int rc;
        do {
            rc = C.fallocate(fd, mode, offset, length);
        } while (rc < 0 && RT.getLastError() == LibC.EINTR);
        if (rc < 0) {
            throw error("fallocate(mode=" + mode + ", offset=" + offset + ", length=" + length + ")", path,
                    RT.getLastError());
        }
    }

    /**
     * lseek with SEEK_DATA or SEEK_HOLE.
     *
     * @return the resulting offset, or -1 when there is no data at or after {@code offset} (ENXIO)
     */
    public long seek(long offset, int whence) throws NativeException {
        long r = C.lseek(fd, offset, whence);
        if (r < 0) {
            int errno = RT.getLastError();
            if (errno == LibC.ENXIO) {
                return -1;
            }
            throw error("lseek(offset=" + offset + ", whence=" + whence + ")", path, errno);
        }
        return r;
    }

    public long blockDeviceSize() throws NativeException {
        LongLongByReference size = new LongLongByReference();
        if (C.ioctl(fd, LibC.BLKGETSIZE64, size) < 0) {
            throw error("ioctl(BLKGETSIZE64)", path, RT.getLastError());
        }
        return size.longValue();
    }

    /** BLKDISCARD or BLKZEROOUT on a block device. */
    public void blockRangeIoctl(long request, long offset, long length) throws NativeException {
        if (C.ioctl(fd, request, new long[] {offset, length}) < 0) {
            throw error("ioctl(0x" + Long.toHexString(request) + ", offset=" + offset + ", length=" + length + ")",
                    path, RT.getLastError());
        }
    }

    public void adviseWillNeed(long offset, long length) {
        // A hint: failure changes nothing the client can observe.
        C.posix_fadvise(fd, offset, length, LibC.POSIX_FADV_WILLNEED);
    }

    @Override
    public void close() {
        C.close(fd);
    }

    private static NativeException error(String op, Path path, int errno) {
        return new NativeException(op + " on " + path + " failed: " + C.strerror(errno) + " (errno " + errno + ")",
                errno);
    }

    /** A failed native call; {@link #errno()} tells why. */
    public static final class NativeException extends IOException {
        private static final long serialVersionUID = 1L;
        private final int errno;

        NativeException(String message, int errno) {
            super(message);
            this.errno = errno;
        }

        public int errno() {
            return errno;
        }

        public boolean notSupported() {
            return errno == LibC.EOPNOTSUPP || errno == LibC.ENOSYS || errno == LibC.EINVAL;
        }

        public boolean noSpace() {
            return errno == LibC.ENOSPC || errno == LibC.EDQUOT || errno == LibC.EFBIG;
        }
    }
}
