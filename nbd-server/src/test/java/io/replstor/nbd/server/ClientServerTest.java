package io.replstor.nbd.server;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.replstor.common.io.FileBackingStore;
import io.replstor.nbd.Nbd;
import io.replstor.nbd.client.Extent;
import io.replstor.nbd.client.NbdClient;
import io.replstor.nbd.client.NbdClientOptions;
import io.replstor.nbd.client.NbdException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Our client against our server: structured reads with holes, block status, many connections. */
@Timeout(60)
class ClientServerTest {
    @TempDir
    static Path dir;
    static NbdServer server;
    static FileBackingStore store;
    static LeakWatcher leaks;

    @BeforeAll
    static void start() throws Exception {
        leaks = new LeakWatcher();
        store = FileBackingStore.open("cs", dir.resolve("cs.img"), false, 32 << 20);
        server = NbdServer.start(NbdServerConfig.of(new InetSocketAddress("127.0.0.1", 0),
                List.of(new NbdExport("cs", "client-server", store, List.of()))));
    }

    @AfterAll
    static void stop() throws InterruptedException {
        server.close();
        store.close();
        leaks.assertNoLeaks();
    }

    static NbdClient connect() throws NbdException {
        return NbdClient.connect(NbdClientOptions.builder().host("127.0.0.1").port(server.localAddress().getPort())
                .exportName("cs").structuredReplies(true).metaContexts(List.of(Nbd.BASE_ALLOCATION)).build());
    }

    @Test
    void readsAssembleHolesAndDataAndBlockStatusMatches() throws Exception {
        try (NbdClient c = connect()) {
            assertEquals("client-server", c.description());
            byte[] data = NbdServerProtocolTest.randomBytes(11, 128 << 10);
            c.write((4 << 20) + (256 << 10), Unpooled.wrappedBuffer(data), Nbd.CMD_FLAG_FUA).get();
            ByteBuf back = c.read(4 << 20, 1 << 20, 0).get();
            try {
                byte[] expect = new byte[1 << 20];
                System.arraycopy(data, 0, expect, 256 << 10, data.length);
                byte[] got = new byte[back.readableBytes()];
                back.readBytes(got);
                assertArrayEquals(expect, got);
            } finally {
                back.release();
            }
            List<Extent> ext = c.blockStatus(4 << 20, 1 << 20, 0).get();
            assertEquals(3, ext.size(), ext.toString());
            assertEquals(256 << 10, ext.get(0).lengthBytes());
            assertEquals(Nbd.STATE_HOLE | Nbd.STATE_ZERO, ext.get(0).flags());
            assertEquals(128 << 10, ext.get(1).lengthBytes());
            assertEquals(0, ext.get(1).flags());
        }
    }

    @Test
    void errorRepliesCarryTheServersMessage() throws Exception {
        try (NbdClient c = connect()) {
            ExecutionException e = assertThrows(ExecutionException.class, () -> c.read(32 << 20, 512, 0).get());
            NbdException n = (NbdException) e.getCause();
            assertEquals(Nbd.EINVAL, n.errno());
            assertTrue(n.serverMessage().contains("beyond the end of export 'cs'"), n.serverMessage());
        }
    }

    @Test
    void fourConnectionsWriteAndOneFlushCoversThemAll() throws Exception {
        NbdClient[] cs = new NbdClient[4];
        try {
            CompletableFuture<?>[] writes = new CompletableFuture<?>[4 * 64];
            for (int i = 0; i < 4; i++) {
                cs[i] = connect();
                for (int j = 0; j < 64; j++) {
                    long off = (long) (i * 64 + j) * 4096;
                    writes[i * 64 + j] = cs[i].write(off, Unpooled.wrappedBuffer(
                            NbdServerProtocolTest.randomBytes(i * 64 + j, 4096)), 0);
                }
            }
            CompletableFuture.allOf(writes).get();
            cs[3].flush().get();
            for (int k = 0; k < 256; k++) {
                ByteBuf b = cs[k % 4].read((long) k * 4096, 4096, 0).get();
                byte[] got = new byte[4096];
                b.readBytes(got);
                b.release();
                assertArrayEquals(NbdServerProtocolTest.randomBytes(k, 4096), got, "block " + k);
            }
        } finally {
            for (NbdClient c : cs) {
                if (c != null) {
                    c.close();
                }
            }
        }
    }
}
