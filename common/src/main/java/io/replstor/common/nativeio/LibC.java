package io.replstor.common.nativeio;

import jnr.ffi.LibraryLoader;
import jnr.ffi.annotations.In;
import jnr.ffi.annotations.Out;
import jnr.ffi.annotations.SaveError;
import jnr.ffi.byref.LongLongByReference;

/**
 * The few Linux calls Java lacks, bound with jnr-ffi. Callers go through {@link NativeFile}, which
 * turns return codes into exceptions in one place.
 */
public interface LibC {
    int O_RDONLY = 0;
    int O_RDWR = 2;
    int O_CLOEXEC = 0x80000;
    /** x86_64 and aarch64 value */
    int O_DSYNC = 0x1000;

    int SEEK_DATA = 3;
    int SEEK_HOLE = 4;

    int FALLOC_FL_KEEP_SIZE = 0x01;
    int FALLOC_FL_PUNCH_HOLE = 0x02;
    int FALLOC_FL_ZERO_RANGE = 0x10;

    int POSIX_FADV_WILLNEED = 3;

    /** _IOR(0x12, 114, size_t) */
    long BLKGETSIZE64 = 0x80081272L;
    /** _IO(0x12, 119): discard a byte range given as u64[2] {offset, length} */
    long BLKDISCARD = 0x1277L;
    /** _IO(0x12, 127): zero a byte range given as u64[2] */
    long BLKZEROOUT = 0x127fL;

    int EINTR = 4;
    int ENXIO = 6;
    int ENOSPC = 28;
    int EDQUOT = 122;
    int EFBIG = 27;
    int EOPNOTSUPP = 95;
    int ENOSYS = 38;
    int EINVAL = 22;
    int EROFS = 30;
    int EPERM = 1;

    LibC INSTANCE = LibraryLoader.create(LibC.class).load("c");

    @SaveError
    int open(String path, int flags, int mode);

    @SaveError
    int close(int fd);

    @SaveError
    int fallocate(int fd, int mode, long offset, long length);

    @SaveError
    long lseek(int fd, long offset, int whence);

    @SaveError
    int ioctl(int fd, long request, @Out LongLongByReference result);

    @SaveError
    int ioctl(int fd, long request, @In long[] range);

    /** Buffers are passed as native addresses (a pointer is a 64-bit integer in the x86_64/aarch64 ABI). */
    @SaveError
    long pread(int fd, long bufferAddress, long count, long offset);

    @SaveError
    long pwrite(int fd, long bufferAddress, long count, long offset);

    @SaveError
    int fdatasync(int fd);

    /** Returns an errno value directly (0 on success); does not set errno. */
    int posix_fadvise(int fd, long offset, long length, int advice);

    String strerror(int errno);
}
