package io.replstor.nbd.server;

import io.replstor.common.io.FileBackingStore;
import io.replstor.nbd.Nbd;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Thousands of mutated handshakes and request streams from a seeded generator, then a clean client
 * must still be served, every connection must be gone and no buffer may leak. The seed is printed,
 * and {@code -Dfuzz.seed=N} replays a run; {@code -Dfuzz.cases=N} changes its size.
 */
@Timeout(300)
class NbdServerFuzzTest {
    static final long SIZE = 4 << 20;
    static final int CASES = Integer.getInteger("fuzz.cases", 2500);

    @TempDir
    static Path dir;
    static NbdServer server;
    static FileBackingStore store;
    static LeakWatcher leaks;

    @BeforeAll
    static void start() throws IOException {
        leaks = new LeakWatcher();
        store = FileBackingStore.open("fuzz", dir.resolve("fuzz.img"), false, SIZE);
        server = NbdServer.start(NbdServerConfig.of(new InetSocketAddress("127.0.0.1", 0),
                List.of(new NbdExport("fuzz", "fuzz target", store, List.of()))).withMaxPayload(1 << 20));
    }

    @AfterAll
    static void stop() throws InterruptedException {
        server.close();
        store.close();
        leaks.assertNoLeaks();
    }

    @Test
    void mutatedHandshakesAndRequestsLeaveTheServerServing() throws Exception {
        long seed = Long.getLong("fuzz.seed", System.nanoTime());
        System.out.println("NbdServerFuzzTest seed=" + seed + " cases=" + CASES + " (replay: -Dfuzz.seed=" + seed + ")");
        Random master = new Random(seed);
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            Future<?>[] futures = new Future<?>[CASES];
            for (int i = 0; i < CASES; i++) {
                long caseSeed = master.nextLong();
                boolean handshakeCase = i % 2 == 0;
                futures[i] = pool.submit(() -> {
                    runCase(new Random(caseSeed), handshakeCase);
                    return null;
                });
            }
            for (Future<?> f : futures) {
                f.get();
            }
        } finally {
            pool.shutdownNow();
        }
        try {
            assertCleanClientIsServed();
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (server.connections() > 0 && System.nanoTime() < deadline) {
                Thread.sleep(20);
            }
            assertEquals(0, server.connections(), "connections left open after the fuzz run");
        } catch (AssertionError | Exception e) {
            throw new AssertionError("fuzz seed " + seed + ": " + e.getMessage(), e);
        }
    }

    /** One connection: a valid byte stream, mutated, sent, and whatever comes back read briefly. */
    private static void runCase(Random rnd, boolean handshakeCase) {
        byte[] handshake = validHandshake(rnd);
        byte[] requests = validRequests(rnd);
        byte[] stream;
        if (handshakeCase) {
            stream = concat(mutate(rnd, handshake), rnd.nextBoolean() ? requests : new byte[0]);
        } else {
            stream = concat(handshake, mutate(rnd, requests));
        }
        try (Socket s = new Socket()) {
            s.connect(server.localAddress(), 5_000);
            s.setSoTimeout(rnd.nextInt(4) == 0 ? 200 : 30);
            s.setTcpNoDelay(true);
            s.getOutputStream().write(stream);
            s.getOutputStream().flush();
            if (rnd.nextBoolean()) {
                s.shutdownOutput(); // a client that stops sending mid-stream
            }
            drain(s.getInputStream());
        } catch (IOException expected) {
            // resets and timeouts are what hostile input earns
        }
    }

    private static void drain(InputStream in) {
        byte[] buf = new byte[65536];
        try {
            long total = 0;
            int n;
            while ((n = in.read(buf)) >= 0 && total < 64 << 20) {
                total += n;
            }
        } catch (IOException timeoutOrReset) {
            // the case is over either way
        }
    }

    static byte[] validHandshake(Random rnd) {
        ByteArrayOutputStream bos = new ByteArrayOutputStream();
        try (DataOutputStream d = new DataOutputStream(bos)) {
            d.writeInt(Nbd.FLAG_C_FIXED_NEWSTYLE | Nbd.FLAG_C_NO_ZEROES);
            int options = rnd.nextInt(4);
            for (int i = 0; i < options; i++) {
                switch (rnd.nextInt(5)) {
                    case 0 -> option(d, Nbd.OPT_STRUCTURED_REPLY, new byte[0]);
                    case 1 -> option(d, Nbd.OPT_LIST, new byte[0]);
                    case 2 -> option(d, Nbd.OPT_INFO, RawNbd.infoData("fuzz", Nbd.INFO_BLOCK_SIZE));
                    case 3 -> option(d, Nbd.OPT_LIST_META_CONTEXT, RawNbd.metaData("fuzz", "base:"));
                    default -> option(d, Nbd.OPT_STARTTLS, new byte[0]);
                }
            }
            option(d, Nbd.OPT_STRUCTURED_REPLY, new byte[0]);
            option(d, Nbd.OPT_SET_META_CONTEXT, RawNbd.metaData("fuzz", Nbd.BASE_ALLOCATION));
            if (rnd.nextInt(5) == 0) {
                option(d, Nbd.OPT_EXPORT_NAME, "fuzz".getBytes());
            } else {
                option(d, Nbd.OPT_GO, RawNbd.infoData("fuzz", Nbd.INFO_NAME, Nbd.INFO_BLOCK_SIZE));
            }
        } catch (IOException e) {
            throw new AssertionError(e);
        }
        return bos.toByteArray();
    }

    static byte[] validRequests(Random rnd) {
        ByteArrayOutputStream bos = new ByteArrayOutputStream();
        try (DataOutputStream d = new DataOutputStream(bos)) {
            int n = 1 + rnd.nextInt(12);
            for (int i = 0; i < n; i++) {
                int type = rnd.nextInt(8);
                if (type == Nbd.CMD_DISC) {
                    type = Nbd.CMD_READ;
                }
                long offset = (long) rnd.nextInt((int) (SIZE / 512)) * 512;
                int length = 512 * (1 + rnd.nextInt(16));
                int flags = switch (type) {
                    case Nbd.CMD_WRITE -> rnd.nextBoolean() ? Nbd.CMD_FLAG_FUA : 0;
                    case Nbd.CMD_WRITE_ZEROES -> rnd.nextInt(4) * Nbd.CMD_FLAG_NO_HOLE & 0x3;
                    case Nbd.CMD_BLOCK_STATUS -> rnd.nextBoolean() ? Nbd.CMD_FLAG_REQ_ONE : 0;
                    default -> 0;
                };
                d.writeInt(Nbd.REQUEST_MAGIC);
                d.writeShort(flags);
                d.writeShort(type);
                d.writeLong(rnd.nextLong());
                d.writeLong(type == Nbd.CMD_FLUSH ? 0 : offset);
                d.writeInt(type == Nbd.CMD_FLUSH ? 0 : length);
                if (type == Nbd.CMD_WRITE) {
                    byte[] payload = new byte[length];
                    rnd.nextBytes(payload);
                    d.write(payload);
                }
            }
            if (rnd.nextBoolean()) {
                d.writeInt(Nbd.REQUEST_MAGIC);
                d.writeShort(0);
                d.writeShort(Nbd.CMD_DISC);
                d.writeLong(0);
                d.writeLong(0);
                d.writeInt(0);
            }
        } catch (IOException e) {
            throw new AssertionError(e);
        }
        return bos.toByteArray();
    }

    private static final int[] INTERESTING = {0, 1, 0x7f, 0xff, 0x7fff, 0xffff, 0x10000, 4096, 65535, 65537,
            0x7fffffff, 0xffffffff, 0x80000000, (32 << 20) + 1, 1 << 20, (1 << 20) + 1, 12, 14, 28};

    /** Bit flips, interesting 32-bit values, truncation, insertion, deletion and duplication. */
    static byte[] mutate(Random rnd, byte[] in) {
        byte[] b = in.clone();
        int mutations = 1 + rnd.nextInt(4);
        for (int m = 0; m < mutations && b.length > 0; m++) {
            int at = rnd.nextInt(b.length);
            switch (rnd.nextInt(7)) {
                case 0 -> b[at] ^= (byte) (1 << rnd.nextInt(8));
                case 1 -> b[at] = (byte) rnd.nextInt(256);
                case 2 -> {
                    if (at + 4 <= b.length) {
                        int v = INTERESTING[rnd.nextInt(INTERESTING.length)];
                        b[at] = (byte) (v >>> 24);
                        b[at + 1] = (byte) (v >>> 16);
                        b[at + 2] = (byte) (v >>> 8);
                        b[at + 3] = (byte) v;
                    }
                }
                case 3 -> b = java.util.Arrays.copyOf(b, at); // truncate
                case 4 -> {
                    byte[] junk = new byte[1 + rnd.nextInt(64)];
                    rnd.nextBytes(junk);
                    b = concat(java.util.Arrays.copyOf(b, at), concat(junk, java.util.Arrays.copyOfRange(b, at, b.length)));
                }
                case 5 -> {
                    int len = Math.min(b.length - at, 1 + rnd.nextInt(32));
                    b = concat(java.util.Arrays.copyOf(b, at), java.util.Arrays.copyOfRange(b, at + len, b.length));
                }
                default -> {
                    int len = Math.min(b.length - at, 1 + rnd.nextInt(64));
                    b = concat(b, java.util.Arrays.copyOfRange(b, at, at + len));
                }
            }
        }
        return b;
    }

    private static void option(DataOutputStream d, int option, byte[] data) throws IOException {
        d.writeLong(Nbd.IHAVEOPT);
        d.writeInt(option);
        d.writeInt(data.length);
        d.write(data);
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] r = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }

    private static void assertCleanClientIsServed() throws IOException {
        try (RawNbd c = new RawNbd(server.localAddress()).greet()) {
            c.structuredReplies();
            c.go("fuzz");
            byte[] data = NbdServerProtocolTest.randomBytes(99, 65536);
            c.request(Nbd.CMD_FLAG_FUA, Nbd.CMD_WRITE, 1, 0, data.length, data);
            assertEquals(0, c.simpleReply(1, null));
            c.request(0, Nbd.CMD_READ, 2, 0, data.length, null);
            RawNbd.Chunk ch = c.chunk();
            assertEquals(Nbd.REPLY_TYPE_OFFSET_DATA, ch.type());
            byte[] back = java.util.Arrays.copyOfRange(ch.payload(), 8, ch.payload().length);
            assertArrayEquals(data, back);
        }
    }
}
