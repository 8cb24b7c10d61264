package io.replstor.replicator.engine;

import io.netty.buffer.Unpooled;
import io.replstor.common.io.StorageException;
import io.replstor.replicator.DiskState;
import io.replstor.replicator.Role;
import io.replstor.replicator.authority.InMemoryStore;
import io.replstor.replicator.authority.RoleView;
import io.replstor.replicator.config.ClusterConfig;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The safety rules of DESIGN §5 in the engine, with two nodes in one JVM (real files and sockets) and
 * an {@link InMemoryStore} in place of the Raft store: concurrent promotions, a deposed Primary whose
 * writes no replica accepts, the in-sync rule and its suspension without quorum. The same rules with
 * the real store and real processes are in system-tests.
 */
@Timeout(120)
class EnforcedRolesEngineTest {
    private static final long SIZE = 16L << 20;
    @TempDir
    Path dir;
    private final List<ReplicationNode> nodes = new ArrayList<>();
    private final ExecutorService pool = Executors.newCachedThreadPool();
    private InMemoryStore store;

    @AfterEach
    void stop() {
        pool.shutdownNow();
        for (ReplicationNode n : nodes) {
            n.close();
        }
    }

    private record Pair(Resource alpha, Resource beta, InMemoryStore.NodeAuthority aStore,
                        InMemoryStore.NodeAuthority bStore) {
    }

    /** alpha and beta, fresh metadata, connected, initial sync skipped: both UpToDate Secondaries. */
    private Pair pair(String options) throws Exception {
        ClusterConfig cfg = ClusterConfig.parse("[cluster]\nname = \"t\"\nquorum = \"off\"\n"
                + node("alpha", 0) + node("beta", 1)
                + "[[resource]]\nname = \"r0\"\nsize = \"16MiB\"\nconnect-int = 1\nping-int = 1\ntimeout = 5\n"
                + options + "\n[resource.on.alpha]\ndisk = \"" + dir.resolve("alpha.img") + "\"\n"
                + "[resource.on.beta]\ndisk = \"" + dir.resolve("beta.img") + "\"\n", "test.toml");
        createMd("alpha", 0, 1);
        createMd("beta", 1, 0);
        store = new InMemoryStore().resource("r0", Set.of("alpha", "beta"));
        ReplicationNode a = ReplicationNode.start(cfg, "alpha", FaultInjection.NONE, 1 << 20, store.node("alpha"));
        nodes.add(a);
        ReplicationNode b = ReplicationNode.start(cfg, "beta", FaultInjection.NONE, 1 << 20, store.node("beta"));
        nodes.add(b);
        a.upAll();
        b.upAll();
        Pair p = new Pair(a.resource("r0"), b.resource("r0"), store.node("alpha"), store.node("beta"));
        await("connected", () -> established(p.alpha()) && established(p.beta()));
        p.alpha().newCurrentUuid(true);
        await("both UpToDate", () -> p.alpha().disk() == DiskState.UP_TO_DATE && p.beta().disk() == DiskState.UP_TO_DATE);
        return p;
    }

    private String node(String name, int id) throws IOException {
        return "[[node]]\nname = \"" + name + "\"\nid = " + id + "\naddress = \"127.0.0.1:" + freePort()
                + "\"\nnbd = \"127.0.0.1:" + freePort() + "\"\nadmin = \"" + dir.resolve(name + ".sock") + "\"\n";
    }

    private static boolean established(Resource r) {
        return r.links.get(0).repl == ReplState.ESTABLISHED;
    }

    @Test
    void concurrentAutoPromotionsAdmitExactlyOneNodeAndTheReplicasStayIdentical() throws Exception {
        Pair p = pair("");
        Resource[] rs = {p.alpha(), p.beta()};
        for (int round = 0; round < 20; round++) {
            CyclicBarrier start = new CyclicBarrier(2);
            List<Future<String>> answers = new ArrayList<>();
            for (Resource r : rs) {
                answers.add(pool.submit(() -> {
                    start.await();
                    return r.admitAsync("client-" + r.self.name()).get(30, TimeUnit.SECONDS);
                }));
            }
            String a = answers.get(0).get();
            String b = answers.get(1).get();
            assertTrue(a == null ^ b == null, "round " + round + ": exactly one node admits: alpha " + a + ", beta " + b);
            Resource winner = a == null ? p.alpha() : p.beta();
            Resource loser = winner == p.alpha() ? p.beta() : p.alpha();
            String refusal = a == null ? b : a;
            assertTrue(refusal.contains(winner.self.name() + " is Primary")
                    || refusal.contains("the Primary is " + winner.self.name()), "round " + round + ": " + refusal);
            assertEquals(Role.SECONDARY, loser.role());
            assertEquals(Set.of(winner.self.name()), store.view("r0").primaries());
            byte fill = (byte) (round + 1);
            write(winner, (long) round * 65536, 65536, fill);
            winner.release("client-" + winner.self.name());
            await("round " + round + ": both Secondary in the store", () -> store.view("r0").primaries().isEmpty()
                    && winner.role() == Role.SECONDARY);
        }
        assertDataIdentical();
    }

    @Test
    void aDeposedPrimaryCannotMakeAReplicaAcceptAWriteAndResyncsFromTheNewPrimary() throws Exception {
        Pair p = pair("");
        p.alpha().primary(false);
        write(p.alpha(), 0, 65536, (byte) 1);
        // alpha loses the store (a partition of its control plane); its lease runs out; beta is promoted
        p.aStore().quorum(false);
        store.expireLease("alpha");
        p.beta().primary(false);
        RoleView v = store.view("r0");
        assertEquals(Set.of("beta"), v.primaries());
        // alpha still believes it is Primary and writes: beta must refuse it, and alpha must not complete it
        byte[] before = read(dir.resolve("beta.img"), 1 << 20, 65536);
        CompletableFuture<StorageException> w = new CompletableFuture<>();
        p.alpha().writeAsync(1 << 20, Unpooled.wrappedBuffer(fill(65536, (byte) 7)), false, w::complete);
        Thread.sleep(1000);
        assertFalse(w.isDone(), "a deposed Primary without quorum must not complete the write");
        assertArrayEquals(before, read(dir.resolve("beta.img"), 1 << 20, 65536), "beta applied a stale write");
        assertNotNull(p.beta().links.get(0).lastError);
        // alpha reaches the store again: it learns it was deposed, the write fails, and it resyncs from beta
        p.aStore().quorum(true);
        StorageException e = w.get(10, TimeUnit.SECONDS);
        assertNotNull(e, "the stale write is never acknowledged");
        await("alpha is Secondary", () -> p.alpha().role() == Role.SECONDARY);
        write(p.beta(), 2 << 20, 65536, (byte) 9);
        await("alpha resynced from beta", () -> established(p.alpha()) && p.alpha().disk() == DiskState.UP_TO_DATE
                && p.beta().outOfSyncBytes(p.beta().links.get(0)) == 0 && p.alpha().outOfSyncBytes(p.alpha().links.get(0)) == 0);
        assertDataIdentical();
        assertEquals(fill(65536, (byte) 9)[0], read(dir.resolve("alpha.img"), 2 << 20, 1)[0]);
    }

    @Test
    void aWriteWaitsForTheCommittedRemovalOfASilentInSyncPeerAndSuspendsWithoutQuorum() throws Exception {
        Pair p = pair("");
        p.alpha().primary(false);
        p.aStore().quorum(false);
        p.beta().disconnect(null);
        await("alpha lost beta", () -> p.alpha().links.get(0).replicating() == null);
        CompletableFuture<StorageException> w = new CompletableFuture<>();
        p.alpha().writeAsync(0, Unpooled.wrappedBuffer(fill(4096, (byte) 3)), false, w::complete);
        Thread.sleep(800);
        assertFalse(w.isDone(), "suspend-io: the write waits until beta's removal is committed");
        assertNotNull(p.alpha().statusView.suspendedWhy());
        assertTrue(p.alpha().statusView.suspendedWhy().contains("beta"), p.alpha().statusView.suspendedWhy());
        assertEquals(Set.of("alpha", "beta"), store.view("r0").inSync());
        p.aStore().quorum(true);
        assertNull(w.get(10, TimeUnit.SECONDS), "completes once beta is out of the in-sync set");
        assertEquals(Set.of("alpha"), store.view("r0").inSync());
        assertNull(p.alpha().statusView.suspendedWhy());
        // beta comes back, resyncs, and the Primary adds it to the in-sync set again
        p.beta().connect(null, false);
        await("beta back in sync", () -> store.view("r0").inSync().equals(Set.of("alpha", "beta")));
        assertDataIdentical();
    }

    @Test
    void withIoErrorAWriteThatNeedsTheStoreFailsWithoutQuorum() throws Exception {
        Pair p = pair("on-no-quorum = \"io-error\"");
        p.alpha().primary(false);
        p.aStore().quorum(false);
        p.beta().disconnect(null);
        await("alpha lost beta", () -> p.alpha().links.get(0).replicating() == null);
        CompletableFuture<StorageException> w = new CompletableFuture<>();
        p.alpha().writeAsync(0, Unpooled.wrappedBuffer(fill(4096, (byte) 3)), false, w::complete);
        StorageException e = w.get(10, TimeUnit.SECONDS);
        assertNotNull(e, "io-error: the write fails instead of waiting");
        assertTrue(e.getMessage().contains("cannot remove beta from the in-sync set"), e.getMessage());
    }

    @Test
    void aPrimaryWhoseLeaseLapsedServesNothingUntilItIsRenewed() throws Exception {
        Pair p = pair("");
        p.alpha().primary(false);
        p.aStore().lease(false);
        CompletableFuture<StorageException> w = new CompletableFuture<>();
        pool.submit(() -> {
            try {
                write(p.alpha(), 0, 4096, (byte) 5);
                w.complete(null);
            } catch (StorageException e) {
                w.complete(e);
            }
            return null;
        });
        Thread.sleep(500);
        assertFalse(w.isDone(), "suspend-io: I/O waits while the lease is lapsed");
        assertTrue(p.alpha().statusView.suspendedWhy().contains("lease"), p.alpha().statusView.suspendedWhy());
        p.aStore().lease(true);
        assertNull(w.get(10, TimeUnit.SECONDS));
    }

    @Test
    void promotionOfANodeOutsideTheInSyncSetIsRefusedUnlessForced() throws Exception {
        Pair p = pair("");
        p.alpha().primary(false);
        p.beta().disconnect(null);
        write(p.alpha(), 0, 4096, (byte) 4); // commits beta's removal
        assertEquals(Set.of("alpha"), store.view("r0").inSync());
        p.alpha().secondary();
        EngineException e = org.junit.jupiter.api.Assertions.assertThrows(EngineException.class,
                () -> p.beta().primary(false));
        assertTrue(e.getMessage().contains("not in the in-sync set"), e.getMessage());
        assertEquals(Role.SECONDARY, p.beta().role());
        assertTrue(p.beta().primary(true).contains("Primary"));
        assertEquals(Set.of("beta"), store.view("r0").inSync());
    }

    @Test
    void aPeerResyncedAfterTheLastPrimaryDemotedRejoinsTheInSyncSetAndCanBePromoted() throws Exception {
        Pair p = pair("");
        p.alpha().primary(false);
        p.beta().disconnect(null);
        write(p.alpha(), 0, 65536, (byte) 6); // commits beta's removal
        assertEquals(Set.of("alpha"), store.view("r0").inSync());
        p.alpha().secondary();
        assertEquals(Set.of(), store.view("r0").primaries());
        long term = store.view("r0").term();
        // beta comes back while no node is Primary: alpha resyncs it and, as a member of the set, adds it
        p.beta().connect(null, false);
        await("beta resynced and back in the in-sync set", () -> store.view("r0").inSync().equals(Set.of("alpha",
                "beta")));
        assertEquals(term, store.view("r0").term(), "an addition does not start a term");
        assertEquals(Set.of(), store.view("r0").primaries());
        assertDataIdentical();
        String promoted = p.beta().primary(false);
        assertTrue(promoted.contains("is Primary"), promoted);
        assertEquals(fill(65536, (byte) 6)[0], read(dir.resolve("beta.img"), 0, 1)[0]);
    }

    // ---- helpers

    private void assertDataIdentical() throws Exception {
        await("both UpToDate and in sync", () -> nodes.stream().allMatch(n -> {
            try {
                Resource r = n.resource("r0");
                return r.disk() == DiskState.UP_TO_DATE && established(r) && r.outOfSyncBytes(r.links.get(0)) == 0;
            } catch (EngineException e) {
                return false;
            }
        }));
        byte[] a = read(dir.resolve("alpha.img"), 0, (int) SIZE);
        byte[] b = read(dir.resolve("beta.img"), 0, (int) SIZE);
        if (!Arrays.equals(a, b)) {
            fail("the data areas differ first at offset " + Arrays.mismatch(a, b));
        }
    }

    private static void write(Resource r, long off, int len, byte value) throws StorageException {
        r.volume().write(off, Unpooled.wrappedBuffer(fill(len, value)), false);
    }

    private static byte[] fill(int len, byte value) {
        byte[] b = new byte[len];
        Arrays.fill(b, value);
        return b;
    }

    private void createMd(String node, int id, int peer) throws IOException {
        EngineFixture.createMd(dir, node, id, List.of(peer), SIZE);
    }

    private static byte[] read(Path file, long off, int len) throws IOException {
        return EngineFixture.read(file, off, len);
    }

    private static int freePort() throws IOException {
        return EngineFixture.freePort();
    }

    private static void await(String what, BooleanSupplier cond) throws InterruptedException {
        EngineFixture.await(what, cond, 30);
    }
}
