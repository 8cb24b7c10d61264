package io.replstor.replicator.engine;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.replstor.replicator.DiskState;
import io.replstor.replicator.Role;
import io.replstor.replicator.config.ClusterConfig;
import io.replstor.replicator.meta.CreateOptions;
import io.replstor.replicator.meta.MetaDisk;
import io.replstor.replicator.meta.Metadata;
import io.replstor.replicator.meta.MetadataGeometry;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Two nodes in one JVM on loopback: the engine end to end below the NBD layer (real files, real
 * sockets). Cluster-level behaviour with real processes and clients is in system-tests.
 */
class TwoNodeEngineTest {
    private void createMd(String node, int id, int peer) throws IOException {
        EngineFixture.createMd(dir, node, id, List.of(peer), SIZE);
    }

    private static void await(String what, BooleanSupplier cond) throws InterruptedException {
        EngineFixture.await(what, cond, 20);
    }

    private static final long SIZE = 64L << 20;
    @TempDir
    Path dir;
    private final List<ReplicationNode> nodes = new ArrayList<>();
    private String lastToml;

    @AfterEach
    void stop() {
        for (ReplicationNode n : nodes) {
            n.close();
        }
    }

    private ClusterConfig config(String protocol) throws Exception {
        return config(protocol, "100M");
    }

    private ClusterConfig config(String protocol, String cMaxRate) throws Exception {
        return config(protocol, cMaxRate, "");
    }

    private ClusterConfig config(String protocol, String cMaxRate, String extra) throws Exception {
        String toml = "[cluster]\nname = \"t\"\nquorum = \"off\"\n"
                + "[[node]]\nname = \"alpha\"\nid = 0\naddress = \"127.0.0.1:" + EngineFixture.freePort() + "\"\nnbd = \"127.0.0.1:"
                + EngineFixture.freePort() + "\"\nadmin = \"" + dir.resolve("a.sock") + "\"\n"
                + "[[node]]\nname = \"beta\"\nid = 1\naddress = \"127.0.0.1:" + EngineFixture.freePort() + "\"\nnbd = \"127.0.0.1:"
                + EngineFixture.freePort() + "\"\nadmin = \"" + dir.resolve("b.sock") + "\"\n"
                + "[[resource]]\nname = \"r0\"\nsize = \"64MiB\"\nprotocol = \"" + protocol + "\"\n"
                + "connect-int = 1\nping-int = 1\ntimeout = 5\nshared-secret = \"s3cret\"\nc-max-rate = \"" + cMaxRate + "\"\n" + extra
                + "[resource.on.alpha]\ndisk = \"" + dir.resolve("alpha.img") + "\"\n"
                + "[resource.on.beta]\ndisk = \"" + dir.resolve("beta.img") + "\"\n";
        lastToml = toml;
        return ClusterConfig.parse(toml, "test.toml");
    }

    /** alpha and beta, both up and connected; resources, links. */
    private record Pair(ReplicationNode a, ReplicationNode b, Resource ra, Resource rb, PeerLink ab, PeerLink ba) {
    }

    /** Creates both nodes' metadata, starts them and waits until they are connected (both Inconsistent). */
    private Pair connectedPair(ClusterConfig cfg, FaultInjection betaFaults) throws Exception {
        createMd("alpha", 0, 1);
        createMd("beta", 1, 0);
        ReplicationNode a = ReplicationNode.start(cfg, "alpha", FaultInjection.NONE, 1 << 20);
        nodes.add(a);
        ReplicationNode b = ReplicationNode.start(cfg, "beta", betaFaults, 1 << 20);
        nodes.add(b);
        a.upAll();
        b.upAll();
        Resource ra = a.resource("r0");
        Resource rb = b.resource("r0");
        Pair p = new Pair(a, b, ra, rb, ra.links.get(0), rb.links.get(0));
        await("connected", () -> p.ab().repl == ReplState.ESTABLISHED && p.ba().repl == ReplState.ESTABLISHED);
        return p;
    }

    /** {@link #connectedPair}, then the initial sync skipped and alpha Primary. */
    private Pair primaryPair(ClusterConfig cfg, FaultInjection betaFaults) throws Exception {
        Pair p = connectedPair(cfg, betaFaults);
        p.ra().newCurrentUuid(true);
        await("both UpToDate", () -> p.ra().disk() == DiskState.UP_TO_DATE && p.rb().disk() == DiskState.UP_TO_DATE);
        p.ra().primary(false);
        return p;
    }

    @Test
    void replicatesWritesAndResyncsAfterADisconnect() throws Exception {
        Pair p = connectedPair(config("C"), FaultInjection.NONE);
        Resource ra = p.ra();
        Resource rb = p.rb();
        PeerLink ab = p.ab();
        List<EngineEvent> events = new java.util.concurrent.CopyOnWriteArrayList<>();
        p.a().addListener(events::add);
        assertEquals(DiskState.INCONSISTENT, ra.disk());
        // a Secondary refuses I/O
        assertThrows(io.replstor.common.io.StorageException.class,
                () -> ra.volume().write(0, Unpooled.wrappedBuffer(new byte[4096]), false));
        ra.newCurrentUuid(true);
        await("both UpToDate", () -> ra.disk() == DiskState.UP_TO_DATE && rb.disk() == DiskState.UP_TO_DATE);
        ra.primary(false);
        assertEquals(Role.PRIMARY, ra.role());
        await("beta sees alpha Primary", () -> rb.links.get(0).peerRole == Role.PRIMARY);

        Random rnd = new Random(7);
        byte[] blk = new byte[65536];
        for (int i = 0; i < 50; i++) {
            rnd.nextBytes(blk);
            ByteBuf buf = Unpooled.wrappedBuffer(blk.clone());
            ra.volume().write((long) i * 65536, buf, false);
            buf.release();
        }
        ra.volume().flush();
        assertArrayEquals(EngineFixture.read(dir.resolve("alpha.img"), 0, 50 * 65536),
                EngineFixture.read(dir.resolve("beta.img"), 0, 50 * 65536), "protocol C: beta has every acknowledged write");
        assertEquals(0L, ab.status().get("out_of_sync_bytes"));

        // disconnect beta; write on alpha; reconnect: bitmap resync of exactly what changed
        rb.disconnect(null);
        await("alpha lost beta", () -> ab.repl == ReplState.OFF);
        for (int i = 0; i < 10; i++) {
            rnd.nextBytes(blk);
            ByteBuf buf = Unpooled.wrappedBuffer(blk.clone());
            ra.volume().write((long) i * 65536 * 7, buf, false);
            buf.release();
        }
        long dirty = (long) ab.status().get("out_of_sync_bytes");
        assertEquals(10L * 65536, dirty);
        long sentBefore = ab.resyncSentBytes.get();
        rb.connect(null, false);
        await("resynced", () -> ab.repl == ReplState.ESTABLISHED && rb.disk() == DiskState.UP_TO_DATE
                && (long) ab.status().get("out_of_sync_bytes") == 0 && rb.links.get(0).repl == ReplState.ESTABLISHED);
        assertEquals(dirty, ab.resyncSentBytes.get() - sentBefore, "only the dirty blocks moved");
        ra.volume().flush();
        assertArrayEquals(EngineFixture.read(dir.resolve("alpha.img"), 0, (int) SIZE),
                EngineFixture.read(dir.resolve("beta.img"), 0, (int) SIZE));
        assertTrue(events.stream().anyMatch(e -> e.object().equals("peer-device")
                && "SyncSource".equals(e.fields().get("replication"))), "a SyncSource event: " + events);
    }

    private static void write(Resource r, long off, int len, byte fill) throws Exception {
        byte[] b = new byte[len];
        java.util.Arrays.fill(b, fill);
        ByteBuf buf = Unpooled.wrappedBuffer(b);
        r.volume().write(off, buf, false);
        buf.release();
    }

    @Test
    void splitBrainIsDetectedAndDiscardMyDataResolvesIt() throws Exception {
        Pair p = primaryPair(config("C"), FaultInjection.NONE);
        Resource ra = p.ra();
        Resource rb = p.rb();
        PeerLink ab = p.ab();
        PeerLink ba = p.ba();
        write(ra, 0, 65536, (byte) 1);

        rb.disconnect(null);
        await("alpha lost beta", () -> ab.repl == ReplState.OFF);
        rb.primary(true);
        write(ra, 1 << 20, 65536, (byte) 2);
        write(rb, 2 << 20, 65536, (byte) 3);
        rb.connect(null, false);
        await("both StandAlone", () -> ab.conn == ConnState.STANDALONE && ba.conn == ConnState.STANDALONE
                && ba.lastError != null && ab.lastError != null);
        assertTrue(ab.lastError.contains("split brain"), ab.lastError);
        assertTrue(ba.lastError.contains("split brain"), ba.lastError);
        assertEquals(Role.PRIMARY, ra.role());
        assertEquals(Role.PRIMARY, rb.role());

        EngineException refused = assertThrows(EngineException.class, () -> rb.connect(null, true));
        assertTrue(refused.getMessage().contains("Primary"), refused.getMessage());
        rb.secondary();
        rb.connect(null, true);
        ra.connect(null, false);
        await("resolved", () -> ab.repl == ReplState.ESTABLISHED && ba.repl == ReplState.ESTABLISHED
                && rb.disk() == DiskState.UP_TO_DATE && (long) ab.status().get("out_of_sync_bytes") == 0);
        ra.volume().flush();
        assertArrayEquals(EngineFixture.read(dir.resolve("alpha.img"), 0, 4 << 20), EngineFixture.read(dir.resolve("beta.img"), 0, 4 << 20),
                "beta's own writes were discarded and alpha's copied");
        assertEquals(0, EngineFixture.read(dir.resolve("beta.img"), 2 << 20, 1)[0], "beta's split-brain write is gone");
    }

    @Test
    void wrongSecretIsRefusedWithAClearReason() throws Exception {
        ClusterConfig good = config("C");
        createMd("alpha", 0, 1);
        createMd("beta", 1, 0);
        ClusterConfig bad = ClusterConfig.parse(lastToml.replace("s3cret", "other"), "bad.toml");
        ReplicationNode a = ReplicationNode.start(good, "alpha", FaultInjection.NONE, 1 << 20);
        nodes.add(a);
        ReplicationNode b = ReplicationNode.start(bad, "beta", FaultInjection.NONE, 1 << 20);
        nodes.add(b);
        a.upAll();
        b.upAll();
        PeerLink ab = a.resource("r0").links.get(0);
        PeerLink ba = b.resource("r0").links.get(0);
        await("refusal recorded", () -> ab.lastError != null && ba.lastError != null);
        assertTrue(ab.lastError.contains("shared secrets differ"), ab.lastError);
        assertTrue(ba.lastError.contains("shared secrets differ"), ba.lastError);
        assertEquals(ReplState.OFF, ab.repl);
    }

    @Test
    void anInterruptedResyncResumesWhereItStopped() throws Exception {
        Pair p = primaryPair(config("C", "4M"), FaultInjection.NONE);
        Resource ra = p.ra();
        Resource rb = p.rb();
        PeerLink ab = p.ab();
        PeerLink ba = p.ba();
        rb.disconnect(null);
        await("alpha lost beta", () -> ab.repl == ReplState.OFF);
        for (int i = 0; i < 16; i++) {
            write(ra, (long) i * (1 << 20) * 3, 1 << 19, (byte) (i + 1)); // 8 MiB in 16 pieces
        }
        long dirty = (long) ab.status().get("out_of_sync_bytes");
        assertEquals(8L << 20, dirty);
        rb.connect(null, false);
        await("resync under way", () -> ba.repl == ReplState.SYNC_TARGET && ba.resyncReceivedBytes.get() >= (2L << 20));
        rb.disconnect(null); // interrupted at ~2 of 8 MiB (c-max-rate 4M)
        await("interrupted", () -> ab.repl == ReplState.OFF);
        long first = ba.resyncReceivedBytes.get();
        assertTrue(first < dirty, "the first attempt must not have finished: " + first);
        assertEquals(DiskState.INCONSISTENT, rb.disk(), "a target that has not finished stays Inconsistent");
        EngineException e = assertThrows(EngineException.class, () -> rb.primary(false));
        assertTrue(e.getMessage().contains("Inconsistent"), e.getMessage());
        rb.connect(null, false);
        await("finished", () -> ba.repl == ReplState.ESTABLISHED && rb.disk() == DiskState.UP_TO_DATE);
        long total = ba.resyncReceivedBytes.get();
        // resumed, not restarted: at most the 16 x 256 KiB requests in flight at the interruption come twice
        assertTrue(total >= dirty && total <= dirty + (4L << 20), "received " + total + " for " + dirty + " dirty");
        ra.volume().flush();
        assertArrayEquals(EngineFixture.read(dir.resolve("alpha.img"), 0, (int) SIZE), EngineFixture.read(dir.resolve("beta.img"), 0, (int) SIZE));
    }

    @Test
    void aPeerThatAnswersPingsButCompletesNoWriteIsDroppedAfterKoCount() throws Exception {
        Pair p = primaryPair(config("C", "100M", "ko-count = 2\nping-timeout = 10\n"),
                FaultInjection.parse("apply-delay-ms=4000"));
        Resource ra = p.ra();
        PeerLink ab = p.ab();
        long start = System.nanoTime();
        write(ra, 0, 4096, (byte) 9); // beta answers pings but takes 4 s to write: ko-count 2 x timeout 0.5 s
        long ms = (System.nanoTime() - start) / 1_000_000;
        assertTrue(ms < 3500, "the write must complete once the slow peer is dropped, not after its 4 s: " + ms + " ms");
        await("dropped", () -> ab.repl == ReplState.OFF);
        assertEquals(4096L, ab.status().get("out_of_sync_bytes"), "the unconfirmed write is marked for beta");
        assertTrue(ab.lastError != null && ab.lastError.contains("ko-count"), "last_error: " + ab.lastError);
    }

    @Test
    void aResourceWithoutPeersIsUpToDateAfterCreateAndAfterARestart() throws Exception {
        String toml = "[cluster]\nname = \"t\"\nquorum = \"off\"\n"
                + "[[node]]\nname = \"alpha\"\nid = 0\naddress = \"127.0.0.1:" + EngineFixture.freePort() + "\"\nnbd = \"127.0.0.1:"
                + EngineFixture.freePort() + "\"\nadmin = \"" + dir.resolve("a.sock") + "\"\n"
                + "[[resource]]\nname = \"r0\"\nsize = \"64MiB\"\n"
                + "[resource.on.alpha]\ndisk = \"" + dir.resolve("alpha.img") + "\"\n";
        ClusterConfig cfg = ClusterConfig.parse(toml, "one.toml");
        Path file = dir.resolve("alpha.img");
        long mdBytes = MetadataGeometry.metadataSizeBytes(SIZE, 1, MetadataGeometry.DEFAULT_AL_RING_BLOCKS);
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.setLength(SIZE + mdBytes + (1 << 20));
        }
        Metadata.create(MetaDisk.openInternal("r0", file, false), CreateOptions.of("r0", 0).withMaxPeers(1)).close();
        for (int run = 0; run < 2; run++) {
            ReplicationNode a = ReplicationNode.start(cfg, "alpha", FaultInjection.NONE, 1 << 20);
            try {
                a.upAll();
                Resource r = a.resource("r0");
                assertEquals(DiskState.UP_TO_DATE, r.disk(), "run " + run);
                r.primary(false);
                write(r, 0, 4096, (byte) (run + 1));
            } finally {
                a.close();
            }
        }
        assertEquals(2, EngineFixture.read(file, 0, 1)[0]);
    }
}
