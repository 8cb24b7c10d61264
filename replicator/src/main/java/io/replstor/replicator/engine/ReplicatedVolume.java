package io.replstor.replicator.engine;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.replstor.common.io.BlockDevice;
import io.replstor.common.io.ClientGate;
import io.replstor.common.io.StorageException;

/**
 * The block device a node exports for a resource. Reads and writes are served only while the node
 * is an UpToDate Primary; writes go to the local disk and to every connected peer (see
 * {@link Resource#write}). As a {@link ClientGate} it promotes on the first NBD client
 * (auto-promote), demotes after the last, and refuses clients on a node that cannot serve.
 *
 * <p>TRIM is accepted and ignored (the content of a trimmed range is unspecified, so leaving it is
 * correct); zeroing writes zero buffers through the replicated write path.
 */
final class ReplicatedVolume implements BlockDevice, ClientGate {
    private static final int ZERO_CHUNK = 1 << 20;
    private static final ByteBuf ZEROES = Unpooled.unreleasableBuffer(
            Unpooled.directBuffer(ZERO_CHUNK, ZERO_CHUNK).writeZero(ZERO_CHUNK).asReadOnly());

    private final Resource res;

    ReplicatedVolume(Resource res) {
        this.res = res;
    }

    @Override
    public String name() {
        return res.name();
    }

    @Override
    public long sizeBytes() {
        return res.sizeBytes();
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
    public void read(long offset, int length, ByteBuf dst) throws StorageException {
        res.read(offset, length, dst);
    }

    @Override
    public void write(long offset, ByteBuf src, boolean fua) throws StorageException {
        res.write(offset, src, fua);
    }

    @Override
    public boolean asyncWrites() {
        return true;
    }

    @Override
    public void writeAsync(long offset, ByteBuf src, boolean fua, WriteCompletion done) throws StorageException {
        res.writeAsync(offset, src, fua, done);
    }

    @Override
    public void flush() throws StorageException {
        res.flush();
    }

    @Override
    public void trim(long offset, long length, boolean fua) throws StorageException {
        if (fua) {
            res.flush();
        }
    }

    @Override
    public void writeZeroes(long offset, long length, boolean noHole, boolean fastOnly, boolean fua)
            throws StorageException {
        if (fastOnly) {
            throw new StorageException(StorageException.Kind.NOT_SUPPORTED, "resource " + res.name()
                    + ": zeroing is not fast on a replicated volume");
        }
        long pos = offset;
        long end = offset + length;
        while (pos < end) {
            int n = (int) Math.min(ZERO_CHUNK, end - pos);
            res.write(pos, ZEROES.slice(0, n), fua);
            pos += n;
        }
    }

    @Override
    public void cache(long offset, long length) {
        // a hint; nothing to do
    }

    @Override
    public void extents(long offset, long length, ExtentSink sink) {
        sink.extent(length, false);
    }

    @Override
    public void close() {
        // the resource owns the disk
    }

    @Override
    public String admit(String client) {
        return res.admit(client);
    }

    /** Auto-promotion asks the role authority: the caller (an NBD event loop) must not wait for it. */
    @Override
    public java.util.concurrent.CompletableFuture<String> admitAsync(String client) {
        return res.admitAsync(client);
    }

    @Override
    public void release(String client) {
        res.release(client);
    }
}
