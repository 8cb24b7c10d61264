package io.replstor.nbd.server;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.replstor.common.io.BlockDevice;

/** A RAM device, so the benchmark measures the protocol path and not the kernel. */
final class MemoryBlockDevice implements BlockDevice {
    private final ByteBuf data;

    MemoryBlockDevice(int sizeBytes) {
        this.data = Unpooled.directBuffer(sizeBytes, sizeBytes).writerIndex(sizeBytes);
    }

    @Override
    public String name() {
        return "memory";
    }

    @Override
    public long sizeBytes() {
        return data.capacity();
    }

    @Override
    public boolean readOnly() {
        return false;
    }

    @Override
    public boolean canTrim() {
        return false;
    }

    @Override
    public boolean canFastZero() {
        return false;
    }

    @Override
    public void read(long offset, int length, ByteBuf dst) {
        dst.writeBytes(data, (int) offset, length);
    }

    @Override
    public void write(long offset, ByteBuf src, boolean fua) {
        data.setBytes((int) offset, src, src.readerIndex(), src.readableBytes());
    }

    @Override
    public void flush() {
    }

    @Override
    public void trim(long offset, long length, boolean fua) {
    }

    @Override
    public void writeZeroes(long offset, long length, boolean noHole, boolean fastOnly, boolean fua) {
        data.setZero((int) offset, (int) length);
    }

    @Override
    public void cache(long offset, long length) {
    }

    @Override
    public void extents(long offset, long length, ExtentSink sink) {
        sink.extent(length, false);
    }

    @Override
    public void close() {
        data.release();
    }
}
