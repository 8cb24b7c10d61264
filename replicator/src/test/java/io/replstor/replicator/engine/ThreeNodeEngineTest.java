package io.replstor.replicator.engine;

import io.netty.buffer.Unpooled;
import io.replstor.common.io.StorageException;
import io.replstor.replicator.DiskState;
import io.replstor.replicator.authority.InMemoryStore;
import io.replstor.replicator.config.ClusterConfig;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Three data nodes in one JVM (real files, real sockets) with an {@link InMemoryStore}: every peer
 * has its own connection, bitmap slot and resync; a lost replica leaves the in-sync set (committed)
 * while writes go on, and rejoins after its resync; a peer whose handshake is slow does not stall
 * writes to the others.
 */
@Timeout(180)
class ThreeNodeEngineTest {
    private static final long SIZE = 16L << 20;
    private static final String[] NAMES = {"alpha", "beta", "gamma"};
    @TempDir
    Path dir;
    private final Map<String, ReplicationNode> nodes = new LinkedHashMap<>();
    private final InMemoryStore store = new InMemoryStore().resource("r0", Set.of(NAMES));
    private ClusterConfig cfg;

    @AfterEach
    void stop() {
        for (ReplicationNode n : nodes.values()) {
            n.close();
        }
    }

    private void startAll() throws Exception {
        StringBuilder t = new StringBuilder("[cluster]\nname = \"t\"\nquorum = \"off\"\n");
        for (int i = 0; i < NAMES.length; i++) {
            t.append("[[node]]\nname = \"").append(NAMES[i]).append("\"\nid = ").append(i)
                    .append("\naddress = \"127.0.0.1:").append(freePort()).append("\"\nnbd = \"127.0.0.1:")
                    .append(freePort()).append("\"\nadmin = \"").append(dir.resolve(NAMES[i] + ".sock")).append("\"\n");
        }
        t.append("[[resource]]\nname = \"r0\"\nsize = \"16MiB\"\nconnect-int = 1\nping-int = 1\ntimeout = 5\n");
        for (String n : NAMES) {
            t.append("[resource.on.").append(n).append("]\ndisk = \"").append(dir.resolve(n + ".img")).append("\"\n");
        }
        cfg = ClusterConfig.parse(t.toString(), "test.toml");
        for (int i = 0; i < NAMES.length; i++) {
            createMd(NAMES[i], i);
        }
        for (String n : NAMES) {
            start(n, FaultInjection.NONE);
        }
        await("all connected", () -> nodes.values().stream().allMatch(ThreeNodeEngineTest::allEstablished));
        res("alpha").newCurrentUuid(true);
        await("all UpToDate", () -> Arrays.stream(NAMES).allMatch(n -> res(n).disk() == DiskState.UP_TO_DATE));
        res("alpha").primary(false);
    }

    private void start(String name, FaultInjection faults) throws Exception {
        ReplicationNode n = ReplicationNode.start(cfg, name, faults, 1 << 20, store.node(name));
        nodes.put(name, n);
        n.upAll();
    }

    private void stopNode(String name) {
        nodes.remove(name).close();
    }

    @Test
    void aLostReplicaLeavesTheInSyncSetWhileWritesGoOnAndRejoinsAfterItsResync() throws Exception {
        startAll();
        long seed = System.nanoTime();
        System.out.println("seed " + seed);
        Writer w = new Writer(res("alpha"), seed);
        w.start();
        try {
            await("writes flowing", () -> w.done.get() > 50);
            stopNode("gamma");
            await("gamma out of the in-sync set", () -> store.view("r0").inSync().equals(Set.of("alpha", "beta")));
            long before = w.done.get();
            await("writes go on without gamma", () -> w.done.get() > before + 100);
            start("gamma", FaultInjection.NONE);
            await("gamma resynced and back in the in-sync set",
                    () -> store.view("r0").inSync().equals(Set.of(NAMES)));
        } finally {
            w.stop();
        }
        assertNull(w.error.get(), "every write completed");
        assertReplicasIdentical();
    }

    @Test
    void aPeerWhoseHandshakeIsSlowDoesNotStallWritesToTheOthers() throws Exception {
        startAll();
        stopNode("gamma");
        await("gamma out of the in-sync set", () -> store.view("r0").inSync().equals(Set.of("alpha", "beta")));
        // gamma comes back slow to answer its handshakes: alpha waits 2 s for gamma's side
        start("gamma", FaultInjection.parse("handshake-delay-ms=2000"));
        PeerLink toGamma = res("alpha").link("gamma");
        await("gamma's handshake started", () -> toGamma.session != null);
        long worstMs = 0;
        int writes = 0;
        long end = System.nanoTime() + 1_500_000_000L;
        while (System.nanoTime() < end && toGamma.repl == ReplState.OFF) {
            long t0 = System.nanoTime();
            write(res("alpha"), (long) (writes % 64) * 65536, (byte) writes);
            worstMs = Math.max(worstMs, (System.nanoTime() - t0) / 1_000_000);
            writes++;
        }
        assertTrue(writes > 10, "writes were issued while gamma was joining (" + writes + ")");
        assertTrue(worstMs < 1000, "a write waited " + worstMs + " ms for a joining peer that is not in the in-sync set");
        await("gamma resynced and back in the in-sync set",
                () -> store.view("r0").inSync().equals(Set.of(NAMES)));
        assertReplicasIdentical();
    }

    /**
     * A replica that missed a generation and caught up from another node, with nothing written meanwhile: the node
     * that had marked it behind must forget that mark when both are at the same generation again (no bits, but the
     * slot's bitmap UUID). Left stale, that UUID kept the next follow of a new generation from recording this
     * node's old one for the replica, and the replica, lost again, came back "unrelated" to it (StandAlone).
     */
    @Test
    void aReplicaLostTwiceWithoutWritesReconnectsToEveryPeer() throws Exception {
        startAll();
        res("alpha").secondary();
        res("beta").primary(false);
        for (int time = 1; time <= 2; time++) {
            stopNode("alpha");
            await("alpha out of the in-sync set", () -> store.view("r0").inSync().equals(Set.of("beta", "gamma")));
            start("alpha", FaultInjection.NONE);
            int t = time;
            try {
                await("alpha back and connected to both peers (time " + t + ")",
                        () -> store.view("r0").inSync().equals(Set.of(NAMES))
                                && Arrays.stream(NAMES).allMatch(n -> allEstablished(nodes.get(n))));
            } catch (AssertionError e) {
                throw new AssertionError(e.getMessage() + "\nalpha: " + res("alpha").status() + "\ngamma: "
                        + res("gamma").status());
            }
        }
        assertReplicasIdentical();
    }

    // ---- helpers

    /** Writes random 4 KiB blocks on a thread until stopped. */
    private static final class Writer {
        final Resource r;
        final Random rnd;
        final AtomicLong done = new AtomicLong();
        final AtomicReference<Throwable> error = new AtomicReference<>();
        final AtomicBoolean stop = new AtomicBoolean();
        Thread thread;

        Writer(Resource r, long seed) {
            this.r = r;
            this.rnd = new Random(seed);
        }

        void start() {
            thread = new Thread(() -> {
                try {
                    while (!stop.get()) {
                        write(r, (long) rnd.nextInt((int) (SIZE / 4096)) * 4096, (byte) rnd.nextInt());
                        done.incrementAndGet();
                    }
                } catch (Throwable t) {
                    error.set(t);
                }
            }, "writer");
            thread.start();
        }

        void stop() throws InterruptedException {
            stop.set(true);
            thread.join(30_000);
        }
    }

    private Resource res(String node) {
        try {
            return nodes.get(node).resource("r0");
        } catch (EngineException e) {
            throw new AssertionError(e);
        }
    }

    private static boolean allEstablished(ReplicationNode n) {
        try {
            return n.resource("r0").links.stream().allMatch(l -> l.repl == ReplState.ESTABLISHED);
        } catch (EngineException e) {
            return false;
        }
    }

    private void assertReplicasIdentical() throws Exception {
        try {
            await("all UpToDate, Established, nothing out of sync", () -> Arrays.stream(NAMES).allMatch(n -> {
                Resource r = res(n);
                return r.disk() == DiskState.UP_TO_DATE && r.links.stream().allMatch(
                        l -> l.repl == ReplState.ESTABLISHED && r.outOfSyncBytes(l) == 0);
            }));
        } catch (AssertionError e) {
            StringBuilder b = new StringBuilder(e.getMessage());
            for (String n : NAMES) {
                b.append('\n').append(n).append(": ").append(res(n).status());
            }
            throw new AssertionError(b.toString());
        }
        byte[] a = read(dir.resolve("alpha.img"));
        for (String n : List.of("beta", "gamma")) {
            byte[] b = read(dir.resolve(n + ".img"));
            if (!Arrays.equals(a, b)) {
                fail("alpha and " + n + " differ first at offset " + Arrays.mismatch(a, b));
            }
        }
    }

    private static void write(Resource r, long off, byte value) throws StorageException {
        byte[] b = new byte[4096];
        Arrays.fill(b, value);
        r.volume().write(off, Unpooled.wrappedBuffer(b), false);
    }

    private void createMd(String node, int id) throws IOException {
        List<Integer> peers = new ArrayList<>();
        for (int i = 0; i < NAMES.length; i++) {
            if (i != id) {
                peers.add(i);
            }
        }
        EngineFixture.createMd(dir, node, id, peers, SIZE);
    }

    private static byte[] read(Path file) throws IOException {
        return EngineFixture.read(file, 0, (int) SIZE);
    }

    private static int freePort() throws IOException {
        return EngineFixture.freePort();
    }

    private static void await(String what, BooleanSupplier cond) throws InterruptedException {
        EngineFixture.await(what, cond, 60);
    }
}
