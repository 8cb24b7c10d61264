package io.replstor.replicator.engine;

import io.replstor.replicator.meta.CreateOptions;
import io.replstor.replicator.meta.MetaDisk;
import io.replstor.replicator.meta.Metadata;
import io.replstor.replicator.meta.MetadataGeometry;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.util.List;
import java.util.function.BooleanSupplier;

/** What the in-process engine tests share: backing files with fresh metadata, ports, waiting, reading back. */
final class EngineFixture {
    private EngineFixture() {
    }

    /**
     * {@code DIR/NODE.img}: {@code sizeBytes} of data plus room for the metadata, with fresh metadata of
     * resource r0 for node {@code id} with a bitmap slot for each of {@code peers}.
     */
    static void createMd(Path dir, String node, int id, List<Integer> peers, long sizeBytes) throws IOException {
        Path file = dir.resolve(node + ".img");
        long md = MetadataGeometry.metadataSizeBytes(sizeBytes, peers.size(), MetadataGeometry.DEFAULT_AL_RING_BLOCKS);
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.setLength(sizeBytes + md + (1 << 20));
        }
        try (Metadata m = Metadata.create(MetaDisk.openInternal("r0", file, false),
                CreateOptions.of("r0", id).withMaxPeers(peers.size()).withPeerNodeIds(peers))) {
            if (m.geometry().dataSizeBytes() < sizeBytes) {
                throw new AssertionError(file + " holds only " + m.geometry().dataSizeBytes() + " bytes of data");
            }
        }
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    /** Polls {@code cond} every 20 ms; fails naming {@code what} after {@code maxSeconds}. */
    static void await(String what, BooleanSupplier cond, int maxSeconds) throws InterruptedException {
        long deadline = System.nanoTime() + maxSeconds * 1_000_000_000L;
        while (!cond.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting for " + what);
            }
            Thread.sleep(20);
        }
    }

    static byte[] read(Path file, long off, int len) throws IOException {
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "r")) {
            byte[] b = new byte[len];
            f.seek(off);
            f.readFully(b);
            return b;
        }
    }
}
