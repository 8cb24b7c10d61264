package io.replstor.nbd.server;

import io.replstor.common.io.FileBackingStore;
import io.replstor.nbd.Nbd;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The server's protocol behaviour, byte by byte, over real sockets to a real server and real files. */
@Timeout(60)
class NbdServerProtocolTest {
    static final long SIZE = 16 << 20;
    static final int MAX_PAYLOAD = 1 << 20;

    @TempDir
    static Path dir;
    static NbdServer server;
    static InetSocketAddress addr;
    static FileBackingStore rw;
    static FileBackingStore ro;
    static LeakWatcher leaks;

    @BeforeAll
    static void start() throws IOException {
        leaks = new LeakWatcher();
        rw = FileBackingStore.open("rw", dir.resolve("rw.img"), false, SIZE);
        Path roFile = dir.resolve("ro.img");
        Files.write(roFile, new byte[1 << 20]);
        ro = FileBackingStore.open("ro", roFile, true, 0);
        List<NbdExport> exports = List.of(new NbdExport("rw", "read-write test export", rw, List.of()),
                new NbdExport("ro", "", ro, List.of()),
                new NbdExport("nobody", "", ro, List.of(AddressMatcher.parse("192.0.2.0/24"))));
        server = NbdServer.start(NbdServerConfig.of(new InetSocketAddress("127.0.0.1", 0), exports)
                .withMaxPayload(MAX_PAYLOAD));
        addr = server.localAddress();
    }

    @AfterAll
    static void stop() throws InterruptedException {
        server.close();
        rw.close();
        ro.close();
        leaks.assertNoLeaks();
    }

    RawNbd connect() throws IOException {
        return new RawNbd(addr).greet();
    }

    @Test
    void unknownClientFlagsCloseTheConnection() throws IOException {
        try (RawNbd c = new RawNbd(addr)) {
            c.in.readLong();
            c.in.readLong();
            c.in.readUnsignedShort();
            c.out.writeInt(Nbd.FLAG_C_FIXED_NEWSTYLE | 0x100);
            c.out.flush();
            assertTrue(c.closedByServer());
        }
    }

    @Test
    void unknownOptionGetsErrUnsupAndParsingGoesOn() throws IOException {
        try (RawNbd c = connect()) {
            c.option(42, new byte[] {1, 2, 3});
            RawNbd.OptionReply r = c.optionReply();
            assertEquals(42, r.option());
            assertEquals(Nbd.REP_ERR_UNSUP, r.type());
            c.option(Nbd.OPT_EXTENDED_HEADERS, new byte[0]);
            assertEquals(Nbd.REP_ERR_UNSUP, c.optionReply().type());
            c.option(Nbd.OPT_LIST, new byte[0]);
            List<String> names = new ArrayList<>();
            RawNbd.OptionReply l;
            while ((l = c.optionReply()).type() == Nbd.REP_SERVER) {
                ByteBuffer b = ByteBuffer.wrap(l.data());
                byte[] n = new byte[b.getInt()];
                b.get(n);
                names.add(new String(n));
            }
            assertEquals(Nbd.REP_ACK, l.type());
            assertEquals(List.of("rw", "ro"), names, "LIST hides exports this address may not use");
        }
    }

    @Test
    void listWithDataIsInvalid() throws IOException {
        try (RawNbd c = connect()) {
            c.option(Nbd.OPT_LIST, new byte[] {0});
            assertEquals(Nbd.REP_ERR_INVALID, c.optionReply().type());
        }
    }

    @Test
    void optionBeyondTheSaneBoundDisconnects() throws IOException {
        try (RawNbd c = connect()) {
            c.out.writeLong(Nbd.IHAVEOPT);
            c.out.writeInt(Nbd.OPT_GO);
            c.out.writeInt(HandshakeHandler.MAX_OPTION_BYTES + 1);
            c.out.flush();
            assertTrue(c.closedByServer());
        }
    }

    @Test
    void badOptionMagicDisconnects() throws IOException {
        try (RawNbd c = connect()) {
            c.out.writeLong(0x1234);
            c.out.writeInt(Nbd.OPT_LIST);
            c.out.writeInt(0);
            c.out.flush();
            assertTrue(c.closedByServer());
        }
    }

    @Test
    void infoAndGoReturnTheSameInformation() throws IOException {
        try (RawNbd c = connect()) {
            c.structuredReplies();
            List<String> info = infoReplies(c, Nbd.OPT_INFO, "rw");
            List<String> go = infoReplies(c, Nbd.OPT_GO, "rw");
            assertEquals(info, go);
            assertTrue(info.contains("export size=" + SIZE + " flags=0x"
                    + Integer.toHexString(Nbd.TFLAG_HAS_FLAGS | Nbd.TFLAG_SEND_FLUSH | Nbd.TFLAG_SEND_FUA
                    | Nbd.TFLAG_SEND_TRIM | Nbd.TFLAG_SEND_WRITE_ZEROES | Nbd.TFLAG_SEND_DF
                    | Nbd.TFLAG_CAN_MULTI_CONN | Nbd.TFLAG_SEND_CACHE | Nbd.TFLAG_SEND_FAST_ZERO)), info.toString());
            assertTrue(info.contains("name=rw"), info.toString());
            assertTrue(info.contains("description=read-write test export"), info.toString());
            assertTrue(info.contains("block min=1 preferred=4096 max=" + MAX_PAYLOAD), info.toString());
        }
    }

    @Test
    void readOnlyExportAdvertisesNoWritesAndDfOnlyWithStructuredReplies() throws IOException {
        try (RawNbd c = connect()) {
            int flags = c.go("ro");
            assertEquals(Nbd.TFLAG_HAS_FLAGS | Nbd.TFLAG_READ_ONLY | Nbd.TFLAG_CAN_MULTI_CONN | Nbd.TFLAG_SEND_CACHE,
                    flags);
            c.request(0, Nbd.CMD_WRITE, 1, 0, 512, new byte[512]);
            assertEquals(Nbd.EPERM, c.simpleReply(1, null));
            c.request(0, Nbd.CMD_TRIM, 2, 0, 512, null);
            assertEquals(Nbd.EPERM, c.simpleReply(2, null));
            c.request(Nbd.CMD_FLAG_DF, Nbd.CMD_READ, 3, 0, 512, null);
            assertEquals(Nbd.EINVAL, c.simpleReply(3, null), "DF without structured replies");
            byte[] data = new byte[512];
            c.request(0, Nbd.CMD_READ, 4, 0, 512, null);
            assertEquals(0, c.simpleReply(4, data));
        }
    }

    @Test
    void unknownExportGetsErrUnknownWithTheListOfExports() throws IOException {
        try (RawNbd c = connect()) {
            c.option(Nbd.OPT_GO, RawNbd.infoData("nope"));
            RawNbd.OptionReply r = c.optionReply();
            assertEquals(Nbd.REP_ERR_UNKNOWN, r.type());
            assertTrue(r.text().contains("nope") && r.text().contains("rw, ro"), r.text());
            c.option(Nbd.OPT_GO, RawNbd.infoData("nobody"));
            assertEquals(Nbd.REP_ERR_POLICY, c.optionReply().type(), "address not in the allow list");
            assertEquals(Nbd.TFLAG_HAS_FLAGS, c.go("rw") & Nbd.TFLAG_HAS_FLAGS, "still usable after errors");
        }
    }

    @Test
    void malformedInfoRequestIsInvalid() throws IOException {
        try (RawNbd c = connect()) {
            c.option(Nbd.OPT_INFO, new byte[] {0, 0, 0, 9, 'r', 'w', 0, 0}); // name longer than data
            assertEquals(Nbd.REP_ERR_INVALID, c.optionReply().type());
            byte[] d = RawNbd.infoData("rw", Nbd.INFO_NAME);
            c.option(Nbd.OPT_INFO, Arrays.copyOf(d, d.length - 1)); // count does not match length
            assertEquals(Nbd.REP_ERR_INVALID, c.optionReply().type());
        }
    }

    @Test
    void exportNameWithoutNoZeroesSendsPadding() throws IOException {
        try (RawNbd c = new RawNbd(addr)) {
            c.in.readLong();
            c.in.readLong();
            c.in.readUnsignedShort();
            c.out.writeInt(Nbd.FLAG_C_FIXED_NEWSTYLE);
            c.option(Nbd.OPT_EXPORT_NAME, "rw".getBytes());
            assertEquals(SIZE, c.in.readLong());
            assertNotEquals(0, c.in.readUnsignedShort() & Nbd.TFLAG_SEND_FLUSH);
            byte[] pad = new byte[124];
            c.in.readFully(pad);
            assertArrayEquals(new byte[124], pad);
            c.request(0, Nbd.CMD_FLUSH, 9, 0, 0, null);
            assertEquals(0, c.simpleReply(9, null));
        }
    }

    @Test
    void exportNameOfUnknownExportCloses() throws IOException {
        try (RawNbd c = connect()) {
            c.option(Nbd.OPT_EXPORT_NAME, "missing".getBytes());
            assertTrue(c.closedByServer());
        }
    }

    @Test
    void abortIsAcknowledgedThenClosed() throws IOException {
        try (RawNbd c = connect()) {
            c.option(Nbd.OPT_ABORT, new byte[0]);
            assertEquals(Nbd.REP_ACK, c.optionReply().type());
            assertTrue(c.closedByServer());
        }
    }

    @Test
    void startTlsIsRefusedByPolicyWhenTlsIsOff() throws IOException {
        try (RawNbd c = connect()) {
            c.option(Nbd.OPT_STARTTLS, new byte[0]);
            assertEquals(Nbd.REP_ERR_POLICY, c.optionReply().type());
        }
    }

    @Test
    void metaContextsListAndSet() throws IOException {
        try (RawNbd c = connect()) {
            c.option(Nbd.OPT_SET_META_CONTEXT, RawNbd.metaData("rw", Nbd.BASE_ALLOCATION));
            assertEquals(Nbd.REP_ERR_INVALID, c.optionReply().type(), "SET needs structured replies");
            for (String[] q : new String[][] {{}, {"base:"}, {"base:allocation", "qemu:dirty-bitmap:x"}}) {
                c.option(Nbd.OPT_LIST_META_CONTEXT, RawNbd.metaData("rw", q));
                RawNbd.OptionReply r = c.optionReply();
                assertEquals(Nbd.REP_META_CONTEXT, r.type(), Arrays.toString(q));
                assertEquals("base:allocation", new String(r.data(), 4, r.data().length - 4));
                assertEquals(Nbd.REP_ACK, c.optionReply().type());
            }
            c.option(Nbd.OPT_LIST_META_CONTEXT, RawNbd.metaData("rw", "other:thing"));
            assertEquals(Nbd.REP_ACK, c.optionReply().type(), "unknown namespaces are ignored");
            c.option(Nbd.OPT_LIST_META_CONTEXT, RawNbd.metaData("missing"));
            assertEquals(Nbd.REP_ERR_UNKNOWN, c.optionReply().type());
        }
    }

    @Test
    void writeReadRoundTripWithSimpleReplies() throws IOException {
        try (RawNbd c = connect()) {
            c.go("rw");
            byte[] data = randomBytes(1, 65536 + 512);
            c.request(Nbd.CMD_FLAG_FUA, Nbd.CMD_WRITE, 7, 1 << 20, data.length, data);
            assertEquals(0, c.simpleReply(7, null));
            byte[] back = new byte[data.length];
            c.request(0, Nbd.CMD_READ, 8, 1 << 20, data.length, null);
            assertEquals(0, c.simpleReply(8, back));
            assertArrayEquals(data, back);
        }
    }

    @Test
    void outOfRangeRequestsGetTheErrorsTheSpecPrescribes() throws IOException {
        try (RawNbd c = connect()) {
            c.go("rw");
            c.request(0, Nbd.CMD_READ, 1, SIZE - 512, 1024, null);
            assertEquals(Nbd.EINVAL, c.simpleReply(1, null));
            c.request(0, Nbd.CMD_WRITE, 2, SIZE - 512, 1024, new byte[1024]);
            assertEquals(Nbd.ENOSPC, c.simpleReply(2, null));
            c.request(0, Nbd.CMD_TRIM, 3, SIZE, 1, null);
            assertEquals(Nbd.EINVAL, c.simpleReply(3, null));
            c.request(0, Nbd.CMD_WRITE_ZEROES, 4, -1L, 1, null);
            assertEquals(Nbd.ENOSPC, c.simpleReply(4, null));
            c.request(0, Nbd.CMD_READ, 5, 0, MAX_PAYLOAD + 1, null);
            assertEquals(Nbd.EINVAL, c.simpleReply(5, null), "read larger than the maximum payload");
            byte[] last = new byte[512];
            c.request(0, Nbd.CMD_READ, 6, SIZE - 512, 512, null);
            assertEquals(0, c.simpleReply(6, last), "the last sector is readable");
        }
    }

    @Test
    void unknownCommandsAndFlagsAreInvalidAndTheConnectionGoesOn() throws IOException {
        try (RawNbd c = connect()) {
            c.go("rw");
            c.request(0, 99, 1, 0, 0, null);
            assertEquals(Nbd.EINVAL, c.simpleReply(1, null));
            c.request(0x8000, Nbd.CMD_READ, 2, 0, 512, null);
            assertEquals(Nbd.EINVAL, c.simpleReply(2, null));
            c.request(Nbd.CMD_FLAG_NO_HOLE, Nbd.CMD_TRIM, 3, 0, 512, null);
            assertEquals(Nbd.EINVAL, c.simpleReply(3, null), "NO_HOLE is only for WRITE_ZEROES");
            c.request(0, Nbd.CMD_BLOCK_STATUS, 4, 0, 512, null);
            assertEquals(Nbd.EINVAL, c.simpleReply(4, null), "BLOCK_STATUS without a meta context");
            c.request(0, Nbd.CMD_READ, 5, 0, 0, null);
            assertEquals(0, c.simpleReply(5, new byte[0]), "zero-length read");
            c.request(0, Nbd.CMD_WRITE, 6, 0, 0, null);
            assertEquals(0, c.simpleReply(6, null), "zero-length write");
            c.request(0, Nbd.CMD_FLUSH, 7, 0, 0, null);
            assertEquals(0, c.simpleReply(7, null));
        }
    }

    @Test
    void oversizedWritePayloadIsDiscardedAndAnsweredEinval() throws IOException {
        try (RawNbd c = connect()) {
            c.go("rw");
            byte[] big = new byte[MAX_PAYLOAD + 4096];
            c.request(0, Nbd.CMD_WRITE, 1, 0, big.length, big);
            assertEquals(Nbd.EINVAL, c.simpleReply(1, null));
            c.request(0, Nbd.CMD_READ, 2, 0, 512, null);
            assertEquals(0, c.simpleReply(2, new byte[512]), "the stream is still in sync");
        }
    }

    @Test
    void writePayloadFarBeyondTheLimitDisconnects() throws IOException {
        try (RawNbd c = connect()) {
            c.go("rw");
            c.request(0, Nbd.CMD_WRITE, 1, 0, MAX_PAYLOAD + NbdServerConfig.DISCARD_LIMIT_BYTES + 1L, null);
            assertTrue(c.closedByServer());
        }
    }

    @Test
    void badRequestMagicDisconnects() throws IOException {
        try (RawNbd c = connect()) {
            c.go("rw");
            c.out.writeInt(0x12345678);
            c.out.write(new byte[24]);
            c.out.flush();
            assertTrue(c.closedByServer());
        }
    }

    @Test
    void structuredReadsReportHolesAndErrorsCarryMessages() throws IOException {
        try (RawNbd c = connect()) {
            c.structuredReplies();
            c.go("rw");
            long base = 8 << 20;
            c.request(0, Nbd.CMD_TRIM, 1, base, 1 << 20, null);
            assertEquals(0, c.simpleReply(1, null));
            byte[] data = randomBytes(2, 4096);
            c.request(0, Nbd.CMD_WRITE, 2, base + 512 * 1024, data.length, data);
            assertEquals(0, c.simpleReply(2, null));
            c.request(0, Nbd.CMD_READ, 3, base, 1 << 20, null);
            byte[] assembled = readStructured(c, 3, base, 1 << 20);
            byte[] expect = new byte[1 << 20];
            System.arraycopy(data, 0, expect, 512 * 1024, data.length);
            assertArrayEquals(expect, assembled);
            c.request(Nbd.CMD_FLAG_DF, Nbd.CMD_READ, 4, base, 1 << 20, null);
            RawNbd.Chunk one = c.chunk();
            assertEquals(Nbd.REPLY_TYPE_OFFSET_DATA, one.type(), "DF: one data chunk");
            assertTrue(one.done());
            c.request(0, Nbd.CMD_READ, 5, SIZE, 512, null);
            RawNbd.Chunk err = c.chunk();
            assertEquals(Nbd.REPLY_TYPE_ERROR, err.type());
            assertEquals(Nbd.EINVAL, err.buffer().getInt());
            assertTrue(new String(err.payload(), 6, err.payload().length - 6).contains("beyond the end"));
            c.request(0, Nbd.CMD_READ, 6, 0, 0, null);
            RawNbd.Chunk none = c.chunk();
            assertEquals(Nbd.REPLY_TYPE_NONE, none.type());
            assertTrue(none.done());
        }
    }

    @Test
    void blockStatusReportsHolesAndData() throws IOException {
        try (RawNbd c = connect()) {
            c.structuredReplies();
            c.setBaseAllocation("rw");
            c.go("rw");
            long base = 12 << 20;
            c.request(0, Nbd.CMD_TRIM, 1, base, 2 << 20, null);
            assertEquals(0, c.simpleReply(1, null));
            c.request(0, Nbd.CMD_WRITE, 2, base + (1 << 20), 65536, randomBytes(3, 65536));
            assertEquals(0, c.simpleReply(2, null));
            c.request(0, Nbd.CMD_BLOCK_STATUS, 3, base, 2 << 20, null);
            RawNbd.Chunk bs = c.chunk();
            assertEquals(Nbd.REPLY_TYPE_BLOCK_STATUS, bs.type());
            assertTrue(bs.done());
            ByteBuffer b = bs.buffer();
            assertEquals(Session.BASE_ALLOCATION_ID, b.getInt());
            assertEquals(1 << 20, b.getInt());
            assertEquals(Nbd.STATE_HOLE | Nbd.STATE_ZERO, b.getInt());
            assertEquals(65536, b.getInt());
            assertEquals(0, b.getInt());
            assertEquals((1 << 20) - 65536, b.getInt(), "then a hole to the end of the range");
            assertEquals(Nbd.STATE_HOLE | Nbd.STATE_ZERO, b.getInt());
            c.request(Nbd.CMD_FLAG_REQ_ONE, Nbd.CMD_BLOCK_STATUS, 4, base, 4096, null);
            ByteBuffer one = c.chunk().buffer();
            one.getInt();
            assertEquals(4096, one.getInt(), "REQ_ONE: one extent no longer than the request");
            assertEquals(Nbd.STATE_HOLE | Nbd.STATE_ZERO, one.getInt());
            assertFalse(one.hasRemaining());
        }
    }

    @Test
    void writeZeroesReadsBackAsZeroes() throws IOException {
        try (RawNbd c = connect()) {
            c.go("rw");
            long off = 3 << 20;
            c.request(0, Nbd.CMD_WRITE, 1, off, 8192, randomBytes(4, 8192));
            assertEquals(0, c.simpleReply(1, null));
            c.request(Nbd.CMD_FLAG_NO_HOLE | Nbd.CMD_FLAG_FUA, Nbd.CMD_WRITE_ZEROES, 2, off, 4096, null);
            assertEquals(0, c.simpleReply(2, null));
            c.request(Nbd.CMD_FLAG_FAST_ZERO, Nbd.CMD_WRITE_ZEROES, 3, off + 4096, 4096, null);
            assertEquals(0, c.simpleReply(3, null), "punching a hole is a fast zero");
            byte[] back = new byte[8192];
            c.request(0, Nbd.CMD_READ, 4, off, 8192, null);
            assertEquals(0, c.simpleReply(4, back));
            assertArrayEquals(new byte[8192], back);
            c.request(0, Nbd.CMD_CACHE, 5, off, 8192, null);
            assertEquals(0, c.simpleReply(5, null));
        }
    }

    @Test
    void disconnectWaitsForInFlightRequests() throws IOException {
        try (RawNbd c = connect()) {
            c.go("rw");
            byte[] data = randomBytes(5, 1 << 20);
            // WRITE and DISC in one go: the write must still be answered before the close
            c.request(Nbd.CMD_FLAG_FUA, Nbd.CMD_WRITE, 1, 2 << 20, data.length, data);
            c.request(0, Nbd.CMD_DISC, 2, 0, 0, null);
            assertEquals(0, c.simpleReply(1, null));
            assertTrue(c.closedByServer());
        }
        try (RawNbd c = connect()) {
            c.go("rw");
            byte[] back = new byte[1 << 20];
            c.request(0, Nbd.CMD_READ, 3, 2 << 20, back.length, null);
            assertEquals(0, c.simpleReply(3, back));
            assertArrayEquals(randomBytes(5, 1 << 20), back);
        }
    }

    @Test
    void flushOnOneConnectionCoversWritesOfAnother() throws IOException {
        try (RawNbd a = connect(); RawNbd b = connect()) {
            assertNotEquals(0, a.go("rw") & Nbd.TFLAG_CAN_MULTI_CONN);
            b.go("rw");
            byte[] data = randomBytes(6, 4096);
            a.request(0, Nbd.CMD_WRITE, 1, 5 << 20, 4096, data);
            assertEquals(0, a.simpleReply(1, null));
            b.request(0, Nbd.CMD_FLUSH, 2, 0, 0, null);
            assertEquals(0, b.simpleReply(2, null));
            byte[] back = new byte[4096];
            b.request(0, Nbd.CMD_READ, 3, 5 << 20, 4096, null);
            assertEquals(0, b.simpleReply(3, back));
            assertArrayEquals(data, back);
        }
    }

    @Test
    void clientVanishingMidPayloadCostsNothing() throws IOException, InterruptedException {
        int before = server.connections();
        for (int i = 0; i < 20; i++) {
            try (RawNbd c = connect()) {
                c.go("rw");
                c.request(0, Nbd.CMD_WRITE, 1, 0, 512 << 10, new byte[1000]); // promise 512 KiB, send 1000 B
            }
        }
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (server.connections() > before && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertEquals(before, server.connections());
        try (RawNbd c = connect()) {
            c.go("rw");
            c.request(0, Nbd.CMD_READ, 1, 0, 512, null);
            assertEquals(0, c.simpleReply(1, new byte[512]));
        }
    }

    @Test
    void manyPipelinedRequestsAllComplete() throws IOException {
        try (RawNbd c = connect()) {
            c.go("rw");
            int n = 2000;
            // write everything first without reading: exercises back-pressure at maxInFlight
            Thread writer = new Thread(() -> {
                try {
                    for (int i = 0; i < n; i++) {
                        c.request(0, Nbd.CMD_WRITE, i, (long) (i % 1024) * 4096, 4096, randomBytes(i % 1024, 4096));
                    }
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            });
            writer.start();
            boolean[] seen = new boolean[n];
            for (int i = 0; i < n; i++) {
                assertEquals(Nbd.SIMPLE_REPLY_MAGIC, c.in.readInt());
                assertEquals(0, c.in.readInt());
                int cookie = (int) c.in.readLong();
                assertFalse(seen[cookie]);
                seen[cookie] = true;
            }
        }
    }

    private static List<String> infoReplies(RawNbd c, int option, String name) throws IOException {
        c.option(option, RawNbd.infoData(name, Nbd.INFO_NAME, Nbd.INFO_DESCRIPTION, Nbd.INFO_BLOCK_SIZE));
        List<String> out = new ArrayList<>();
        while (true) {
            RawNbd.OptionReply r = c.optionReply();
            if (r.type() == Nbd.REP_ACK) {
                return out;
            }
            assertEquals(Nbd.REP_INFO, r.type(), r.text());
            ByteBuffer b = ByteBuffer.wrap(r.data());
            switch (b.getShort()) {
                case Nbd.INFO_EXPORT -> out.add("export size=" + b.getLong() + " flags=0x"
                        + Integer.toHexString(b.getShort() & 0xffff));
                case Nbd.INFO_NAME -> out.add("name=" + new String(r.data(), 2, r.data().length - 2));
                case Nbd.INFO_DESCRIPTION -> out.add("description=" + new String(r.data(), 2, r.data().length - 2));
                case Nbd.INFO_BLOCK_SIZE -> out.add("block min=" + b.getInt() + " preferred=" + b.getInt()
                        + " max=" + b.getInt());
                default -> out.add("other");
            }
        }
    }

    /** Reads chunks until DONE and assembles data and holes into one array. */
    private static byte[] readStructured(RawNbd c, long cookie, long offset, int length) throws IOException {
        byte[] out = new byte[length];
        boolean[] covered = new boolean[length];
        RawNbd.Chunk ch;
        int holes = 0;
        do {
            ch = c.chunk();
            assertEquals(cookie, ch.cookie());
            ByteBuffer b = ch.buffer();
            long at = b.getLong() - offset;
            int len;
            if (ch.type() == Nbd.REPLY_TYPE_OFFSET_HOLE) {
                len = b.getInt();
                holes++;
            } else {
                assertEquals(Nbd.REPLY_TYPE_OFFSET_DATA, ch.type());
                len = b.remaining();
                b.get(out, (int) at, len);
            }
            for (int i = 0; i < len; i++) {
                assertFalse(covered[(int) at + i], "chunks overlap");
                covered[(int) at + i] = true;
            }
        } while (!ch.done());
        for (boolean cov : covered) {
            assertTrue(cov, "chunks cover the request");
        }
        assertTrue(holes > 0, "the leading hole is sent as OFFSET_HOLE");
        return out;
    }

    static byte[] randomBytes(long seed, int n) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }
}
