package io.replstor.replicator.engine;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.buffer.Unpooled;
import io.netty.buffer.UnpooledByteBufAllocator;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.embedded.EmbeddedChannel;
import io.replstor.replicator.DiskState;
import io.replstor.replicator.Role;
import io.replstor.replicator.config.ClusterConfig;
import io.replstor.replicator.config.ReplicationProtocol;
import io.replstor.replicator.net.DisconnectReason;
import io.replstor.replicator.net.HandshakeSettings;
import io.replstor.replicator.net.LeakWatcher;
import io.replstor.replicator.net.PeerFrame;
import io.replstor.replicator.net.PeerFrameDecoder;
import io.replstor.replicator.net.PeerFrameEncoder;
import io.replstor.replicator.net.PeerFrameType;
import io.replstor.replicator.net.PeerHandshake;
import io.replstor.replicator.net.PeerProtocolException;
import io.replstor.replicator.net.RefuseReason;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.Queue;
import java.util.Random;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import java.util.zip.CRC32C;

import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

/**
 * Seeded fuzzing of the peer protocol at three levels, each case built from its own seed drawn from
 * the run's seed:
 * <ol>
 * <li>the {@link PeerFrameDecoder} on an {@link EmbeddedChannel}: valid frames of every type,
 *     mutated (fields, lengths, types, flags, truncation, splices, garbage; checksums repaired or
 *     not) and fed in random pieces. What it yields is compared with a reference reading of the
 *     wire format written from {@link PeerFrame}'s javadoc; every yielded frame is read through the
 *     flyweight and, where it can be, re-encoded to the same bytes; only {@link PeerProtocolException}
 *     may come out of it;</li>
 * <li>two {@link PeerHandshake}s on {@link EmbeddedChannel}s with a meddler between them that mutates,
 *     drops, duplicates, reorders and injects frames: each side ends Completed or Refused (within
 *     the handshake timeout), and a side completes authenticated only on the right HMAC;</li>
 * <li>a live node: alpha and beta connected (beta dials, alpha accepts), alpha Primary and writing,
 *     while thousands of raw connections throw garbage, mutated HELLOs, unauthenticated frames,
 *     wrong secrets, challenges relayed between the two nodes and stalled partial frames at alpha's
 *     listener. No node may answer a stranger's challenge or accept it; alpha must keep its
 *     session, replicate, close every stranger, and accept beta again afterwards.</li>
 * </ol>
 * The seed is printed; {@code -Dfuzz.seed=N} replays a run, {@code -Dfuzz.cases=N} sets the cases
 * per level (the decoder gets three times as many: they are cheap). Each level is bounded in time in
 * proportion to its cases; a run much larger than the default also needs
 * {@code -Djunit.jupiter.execution.timeout.mode=disabled} to lift the {@code @Timeout}s.
 */
class PeerProtocolFuzzTest {
    static final long SEED = Long.getLong("fuzz.seed", System.nanoTime());
    static final int CASES = Integer.getInteger("fuzz.cases", 2000);
    /** What the code under test gets: pooled, and tracked by the leak detector. */
    private static final ByteBufAllocator POOLED = PooledByteBufAllocator.DEFAULT;
    /**
     * What the test encodes its own bytes with: untracked, since the paranoid leak detector records a
     * stack trace on every access and would make generating frames the bulk of the run.
     */
    private static final ByteBufAllocator GEN = new UnpooledByteBufAllocator(false, true);
    private static final PeerFrameType[] TYPES = PeerFrameType.values();
    private static final String SECRET = "s3cret";
    private static final long SIZE = 64L << 20;

    @TempDir
    Path dir;
    private LeakWatcher leaks;
    private final List<ReplicationNode> nodes = new ArrayList<>();
    /** The case running (or, live, the last one started): named in a hang's message. */
    private volatile String current = "setup";

    @BeforeAll
    static void printSeed() {
        System.out.println("PeerProtocolFuzzTest seed=" + SEED + " cases=" + CASES + " (replay: -Dfuzz.seed=" + SEED
                + ")");
    }

    @BeforeEach
    void watchLeaks() {
        leaks = new LeakWatcher();
    }

    @AfterEach
    void stopAndCheckLeaks() throws InterruptedException {
        for (ReplicationNode n : nodes) {
            n.close();
        }
        nodes.clear();
        try {
            leaks.assertNoLeaks();
        } catch (AssertionError e) {
            throw new AssertionError(tag() + e.getMessage(), e);
        }
    }

    private static String tag() {
        return "[fuzz seed " + SEED + ", replay with -Dfuzz.seed=" + SEED + "] ";
    }

    /**
     * Runs {@code body} bounded in time (for the default number of cases; scaled up for more); any
     * failure, a hang included, names the seed and the case.
     */
    private void bounded(int seconds, Executable body) {
        long limit = Math.max(seconds, (long) seconds * CASES / 2000);
        try {
            assertTimeoutPreemptively(Duration.ofSeconds(limit), body, () -> "hung in " + current);
        } catch (Throwable t) {
            throw new AssertionError(tag() + t, t);
        }
    }

    // =====================================================================================
    // The wire format as PeerFrame's javadoc writes it: a reference kept apart from
    // PeerFrameType on purpose, so that a mistake in the decoder's tables shows.
    // =====================================================================================

    static final int MAGIC = 0x52504C31;
    static final int HEADER = 16;
    private static final int BULK = -1;
    /** Fixed-field bytes by type code. */
    private static final int[] FIXED = {-1, 84, 32, 0, 4, 40, 16, 40, 16, 16, 16, 16, 16, 0, 0, 8, 16, 16, 4, 16};
    private static final int[] MIN_PAYLOAD = {0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    private static final int[] MAX_PAYLOAD = {0, 255, 0, 0, 1024, 256, 0, BULK, 0, 0, 0, 0, 0, 0, 0, BULK, 0, BULK,
            1024, 0};
    private static final int[] UNIT = {1, 1, 1, 1, 1, 8, 1, 1, 1, 1, 1, 1, 1, 1, 1, 4, 1, 1, 1, 1};
    private static final int CODE_HELLO = 1;
    private static final int CODE_AUTH_RESPONSE = 2;
    private static final int CODE_AUTH_OK = 3;
    private static final int CODE_REFUSE = 4;
    private static final int CODE_DATA = 7;

    enum End { CLEAN, INVALID, TRUNCATED }

    /** Frames as {start, length}, and how the stream ended. */
    record Parsed(List<int[]> frames, End end) {
        byte[] frame(byte[] s, int i) {
            int[] f = frames.get(i);
            return Arrays.copyOfRange(s, f[0], f[0] + f[1]);
        }

        int code(byte[] s, int i) {
            return u16(s, frames.get(i)[0] + 4);
        }
    }

    static int u16(byte[] b, int at) {
        return ((b[at] & 0xFF) << 8) | (b[at + 1] & 0xFF);
    }

    static int i32(byte[] b, int at) {
        return ((b[at] & 0xFF) << 24) | ((b[at + 1] & 0xFF) << 16) | ((b[at + 2] & 0xFF) << 8) | (b[at + 3] & 0xFF);
    }

    static long u32(byte[] b, int at) {
        return i32(b, at) & 0xFFFF_FFFFL;
    }

    static void put32(byte[] b, int at, long v) {
        b[at] = (byte) (v >>> 24);
        b[at + 1] = (byte) (v >>> 16);
        b[at + 2] = (byte) (v >>> 8);
        b[at + 3] = (byte) v;
    }

    static void put16(byte[] b, int at, int v) {
        b[at] = (byte) (v >>> 8);
        b[at + 1] = (byte) v;
    }

    static boolean known(int code) {
        return code >= 1 && code < FIXED.length;
    }

    /** Whether the 16-byte header at {@code at} is acceptable (everything but the checksum). */
    static boolean validHeader(byte[] s, int at, int maxPayload) {
        if (i32(s, at) != MAGIC) {
            return false;
        }
        int code = u16(s, at + 4);
        if (!known(code)) {
            return false;
        }
        int allowed = code == CODE_DATA ? 3 : 1;
        if ((u16(s, at + 6) & ~allowed) != 0) {
            return false;
        }
        long len = u32(s, at + 8);
        long max = MAX_PAYLOAD[code] == BULK ? maxPayload : MAX_PAYLOAD[code];
        return len <= max && len >= MIN_PAYLOAD[code] && len % UNIT[code] == 0;
    }

    /** CRC32C of header and fixed fields (checksum field as 0), plus the payload if flagged. */
    static int checksum(byte[] s, int at) {
        int code = u16(s, at + 4);
        int head = HEADER + FIXED[code];
        byte[] h = Arrays.copyOfRange(s, at, at + head);
        Arrays.fill(h, 12, 16, (byte) 0);
        CRC32C crc = new CRC32C();
        crc.update(h);
        if ((u16(s, at + 6) & 1) != 0) {
            crc.update(s, at + head, (int) u32(s, at + 8));
        }
        return (int) crc.getValue();
    }

    /** The reference reading of a whole stream. */
    static Parsed parse(byte[] s, int maxPayload) {
        List<int[]> frames = new ArrayList<>();
        int at = 0;
        while (at < s.length) {
            if (s.length - at < HEADER) {
                return new Parsed(frames, End.TRUNCATED);
            }
            if (!validHeader(s, at, maxPayload)) {
                return new Parsed(frames, End.INVALID);
            }
            int total = HEADER + FIXED[u16(s, at + 4)] + (int) u32(s, at + 8);
            if (s.length - at < total) {
                return new Parsed(frames, End.TRUNCATED);
            }
            if (checksum(s, at) != i32(s, at + 12)) {
                return new Parsed(frames, End.INVALID);
            }
            frames.add(new int[]{at, total});
            at += total;
        }
        return new Parsed(frames, End.CLEAN);
    }

    /**
     * Repairs the checksum of every whole frame of a known type, up to the first that is not whole,
     * whatever else is wrong with it (magic, flags, length out of bounds): so the decoder must find
     * that, not a checksum mismatch.
     */
    static void fixChecksums(byte[] s) {
        int at = 0;
        while (s.length - at >= HEADER && known(u16(s, at + 4))) {
            long total = (long) HEADER + FIXED[u16(s, at + 4)] + u32(s, at + 8);
            if (s.length - at < total) {
                return;
            }
            put32(s, at + 12, checksum(s, at));
            at += (int) total;
        }
    }

    /** Frames found loosely (known type, any magic), as {start, headBytes, declared length}; for the mutator. */
    static List<int[]> scan(byte[] s) {
        List<int[]> out = new ArrayList<>();
        int at = 0;
        while (s.length - at >= HEADER) {
            int code = u16(s, at + 4);
            if (!known(code)) {
                break;
            }
            int head = HEADER + FIXED[code];
            long len = u32(s, at + 8);
            out.add(new int[]{at, head, (int) Math.min(len, Integer.MAX_VALUE)});
            if (len > s.length - at - head) {
                break;
            }
            at += head + (int) len;
        }
        return out;
    }

    // =====================================================================================
    // Valid frames with plausible fields
    // =====================================================================================

    private static final String CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-_ .éü≠€𝄞";

    static String text(Random rnd, int maxChars) {
        int n = rnd.nextInt(maxChars + 1);
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < n; i++) {
            int at = rnd.nextInt(CHARS.length() - 1);
            if (Character.isLowSurrogate(CHARS.charAt(at))) {
                at--;
            }
            b.append(CHARS.charAt(at));
            if (Character.isHighSurrogate(CHARS.charAt(at))) {
                b.append(CHARS.charAt(at + 1));
            }
        }
        return b.toString();
    }

    static String resourceName(Random rnd) {
        String s;
        do {
            s = text(rnd, rnd.nextInt(20) == 0 ? 255 : 24);
        } while (s.isEmpty() || s.getBytes(StandardCharsets.UTF_8).length > PeerFrame.RESOURCE_NAME_MAX_BYTES);
        return s;
    }

    static byte[] random(Random rnd, int n) {
        byte[] b = new byte[n];
        rnd.nextBytes(b);
        return b;
    }

    static int bulkBytes(Random rnd) {
        return switch (rnd.nextInt(12)) {
            case 0 -> 0;
            case 1 -> 1;
            case 2 -> 3;
            case 3 -> 512;
            case 4, 5 -> 4096;
            case 6 -> 4097;
            case 7 -> 65536;
            case 8 -> rnd.nextInt(50) == 0 ? 1 << 20 : 8192;
            default -> 1 + rnd.nextInt(2048);
        };
    }

    static long plausibleLong(Random rnd) {
        return switch (rnd.nextInt(4)) {
            case 0 -> rnd.nextInt(100);
            case 1 -> (long) rnd.nextInt(1 << 16) * 4096;
            case 2 -> rnd.nextLong();
            default -> rnd.nextBoolean() ? Long.MAX_VALUE : -1L;
        };
    }

    /** Concatenates the readable bytes of {@code parts} and releases them. */
    static byte[] bytes(ByteBuf... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (ByteBuf p : parts) {
            try {
                out.writeBytes(ByteBufUtil.getBytes(p));
            } finally {
                p.release();
            }
        }
        return out.toByteArray();
    }

    /** A valid frame of {@code t}, built by {@link PeerFrameEncoder}. */
    static byte[] validFrame(Random rnd, PeerFrameType t) {
        PeerFrameEncoder enc = new PeerFrameEncoder(rnd.nextInt(3) != 0);
        return switch (t) {
            case HELLO -> bytes(enc.hello(GEN, 1 + rnd.nextInt(3), 2 + rnd.nextInt(3), rnd.nextInt(8),
                    plausibleLong(rnd), ReplicationProtocol.values()[rnd.nextInt(3)], rnd.nextInt(2),
                    random(rnd, PeerFrame.CHALLENGE_BYTES), resourceName(rnd), rnd.nextInt(2)));
            case AUTH_RESPONSE -> bytes(enc.authResponse(GEN, random(rnd, PeerFrame.HMAC_BYTES)));
            case AUTH_OK -> bytes(enc.authOk(GEN));
            case REFUSE -> bytes(enc.refuse(GEN, RefuseReason.values()[rnd.nextInt(RefuseReason.values().length)],
                    text(rnd, rnd.nextInt(10) == 0 ? 1100 : 80)));
            case UUIDS -> {
                long[] history = new long[rnd.nextInt(PeerFrame.HISTORY_MAX_UUIDS + 1)];
                for (int i = 0; i < history.length; i++) {
                    history[i] = rnd.nextLong();
                }
                yield bytes(enc.uuids(GEN, rnd.nextLong(), rnd.nextLong(), rnd.nextInt(64), plausibleLong(rnd),
                        rnd.nextInt(8), history));
            }
            case STATE -> bytes(enc.state(GEN, Role.values()[rnd.nextInt(Role.values().length)],
                    DiskState.values()[rnd.nextInt(DiskState.values().length)], rnd.nextInt(4), plausibleLong(rnd)));
            case DATA -> {
                ByteBuf payload = Unpooled.wrappedBuffer(random(rnd, bulkBytes(rnd)));
                ByteBuf head = enc.dataHead(GEN, plausibleLong(rnd), plausibleLong(rnd), plausibleLong(rnd),
                        plausibleLong(rnd), rnd.nextInt(8), rnd.nextBoolean(), payload);
                yield bytes(head, payload);
            }
            case RECV_ACK -> bytes(enc.recvAck(GEN, plausibleLong(rnd), plausibleLong(rnd)));
            case WRITE_ACK -> bytes(enc.writeAck(GEN, plausibleLong(rnd), plausibleLong(rnd)));
            case NEG_ACK -> bytes(enc.negAck(GEN, plausibleLong(rnd), plausibleLong(rnd)));
            case BARRIER -> bytes(enc.barrier(GEN, plausibleLong(rnd), plausibleLong(rnd)));
            case BARRIER_ACK -> bytes(enc.barrierAck(GEN, plausibleLong(rnd), rnd.nextInt() & 0xFFFF_FFFFL));
            case PEER_ACK -> bytes(enc.peerAck(GEN, plausibleLong(rnd), rnd.nextInt(16)));
            case PING -> bytes(enc.ping(GEN));
            case PING_ACK -> bytes(enc.pingAck(GEN));
            case BITMAP -> {
                int[] runs = new int[rnd.nextInt(8) == 0 ? 1 + rnd.nextInt(2048) : rnd.nextInt(16)];
                for (int i = 0; i < runs.length; i++) {
                    runs[i] = rnd.nextBoolean() ? rnd.nextInt(1000) : rnd.nextInt();
                }
                yield bytes(enc.bitmap(GEN, plausibleLong(rnd), runs, runs.length));
            }
            case RS_REQUEST -> bytes(enc.rsRequest(GEN, plausibleLong(rnd), rnd.nextInt() & 0xFFFF_FFFFL));
            case RS_DATA -> {
                ByteBuf payload = Unpooled.wrappedBuffer(random(rnd, bulkBytes(rnd)));
                ByteBuf head = enc.rsDataHead(GEN, plausibleLong(rnd), plausibleLong(rnd), payload);
                yield bytes(head, payload);
            }
            case DISCONNECT -> bytes(enc.disconnect(GEN,
                    DisconnectReason.values()[rnd.nextInt(DisconnectReason.values().length)],
                    text(rnd, rnd.nextInt(10) == 0 ? 1100 : 80)));
        };
    }

    static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] p : parts) {
            out.writeBytes(p);
        }
        return out.toByteArray();
    }

    // =====================================================================================
    // Mutations
    // =====================================================================================

    private static final long[] INTERESTING_U32 = {0, 1, 2, 3, 4, 7, 8, 15, 16, 255, 256, 1023, 1024, 1025, 4095,
            4096, 65535, 65536, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 0x7FFF_FFFEL, 0x7FFF_FFFFL, 0x8000_0000L,
            0x8000_0001L, 0xFFFF_FFFEL, 0xFFFF_FFFFL};
    private static final long[] INTERESTING_U64 = {0, 1, -1, Long.MAX_VALUE, Long.MIN_VALUE, 1L << 32, SIZE,
            SIZE - 4096, SIZE + 4096, 0xFFFF_FFFFL};
    private static final int[] INTERESTING_TYPES = {0, 19, 20, 31, 32, 33, 255, 256, 0x7FFF, 0x8000, 0xFFFF};

    /** A byte different from {@code b} whatever it is: keeps mutations independent of the content. */
    static byte other(Random rnd, byte b) {
        return (byte) (b ^ (1 + rnd.nextInt(255)));
    }

    /** {@code n} mutations, each aware of where the frames and their fields lie. */
    static byte[] mutate(Random rnd, byte[] in, int n) {
        byte[] s = in.clone();
        for (int i = 0; i < n; i++) {
            s = mutateOnce(rnd, s);
        }
        return s;
    }

    private static byte[] mutateOnce(Random rnd, byte[] s) {
        List<int[]> frames = scan(s);
        int[] f = frames.isEmpty() ? null : frames.get(rnd.nextInt(frames.size()));
        int op = rnd.nextInt(19);
        if (s.length == 0) {
            return random(rnd, 1 + rnd.nextInt(32));
        }
        if (f == null && (op <= 7 || op >= 17)) {
            op = 0;
        }
        switch (op) {
            case 0 -> {
                int at = rnd.nextInt(s.length);
                s[at] ^= (byte) (1 << rnd.nextInt(8));
            }
            case 1 -> { // a header byte
                int at = f[0] + rnd.nextInt(HEADER);
                s[at] = other(rnd, s[at]);
            }
            case 2 -> { // a fixed-field byte
                int fixed = f[1] - HEADER;
                int at = f[0] + HEADER + (fixed > 0 ? rnd.nextInt(fixed) : 0);
                if (at < s.length) {
                    s[at] = other(rnd, s[at]);
                }
            }
            case 3 -> { // a payload byte
                int from = f[0] + f[1];
                int to = (int) Math.min(s.length, end(f));
                int at = from + (to > from ? rnd.nextInt(to - from) : 0);
                if (at < s.length) {
                    s[at] = other(rnd, s[at]);
                }
            }
            case 4, 5 -> { // the length field
                long v = switch (rnd.nextInt(4)) {
                    case 0 -> INTERESTING_U32[rnd.nextInt(INTERESTING_U32.length)];
                    case 1 -> f[2] + (rnd.nextBoolean() ? 1 : -1);
                    case 2 -> f[2] + (rnd.nextBoolean() ? 4 : 8) * (rnd.nextBoolean() ? 1 : -1);
                    default -> rnd.nextInt() & 0xFFFF_FFFFL;
                };
                put32(s, f[0] + 8, v & 0xFFFF_FFFFL);
            }
            case 6 -> put16(s, f[0] + 4, rnd.nextBoolean() ? INTERESTING_TYPES[rnd.nextInt(INTERESTING_TYPES.length)]
                    : 1 + rnd.nextInt(TYPES.length));
            case 7 -> put16(s, f[0] + 6, switch (rnd.nextInt(5)) {
                case 0 -> 0;
                case 1 -> 2;
                case 2 -> 1 << rnd.nextInt(16);
                case 3 -> 0xFFFF;
                default -> rnd.nextInt(1 << 16);
            });
            case 8 -> { // a fixed field as a whole: an interesting u64 (or u32 near the end)
                if (f != null && f[1] > HEADER) {
                    int fixed = f[1] - HEADER;
                    int at = f[0] + HEADER + 4 * rnd.nextInt(Math.max(1, fixed / 4));
                    long v = INTERESTING_U64[rnd.nextInt(INTERESTING_U64.length)];
                    for (int k = 0; k < 8 && at + k < Math.min(s.length, f[0] + f[1]); k++) {
                        s[at + k] = (byte) (v >>> (56 - 8 * k));
                    }
                } else {
                    s[rnd.nextInt(s.length)] ^= 0x80;
                }
            }
            case 9 -> s = Arrays.copyOf(s, rnd.nextInt(s.length)); // truncate
            case 10 -> s = concat(s, rnd.nextBoolean() ? random(rnd, 1 + rnd.nextInt(64)) // extend
                    : prefix(rnd, validFrame(rnd, TYPES[rnd.nextInt(TYPES.length)])));
            case 11 -> { // duplicate a frame at a frame boundary
                if (f != null && end(f) <= s.length) {
                    byte[] copy = Arrays.copyOfRange(s, f[0], (int) end(f));
                    int at = frames.get(rnd.nextInt(frames.size()))[0];
                    s = concat(Arrays.copyOf(s, at), copy, Arrays.copyOfRange(s, at, s.length));
                } else {
                    s = concat(s, s);
                }
            }
            case 12 -> { // splice: the head of the stream up to a point, then its tail from another point
                int a = rnd.nextInt(s.length);
                int b = rnd.nextInt(s.length);
                s = concat(Arrays.copyOf(s, a), Arrays.copyOfRange(s, b, s.length));
            }
            case 13 -> { // delete a range
                int at = rnd.nextInt(s.length);
                int len = Math.min(s.length - at, 1 + rnd.nextInt(32));
                s = concat(Arrays.copyOf(s, at), Arrays.copyOfRange(s, at + len, s.length));
            }
            case 14 -> { // insert garbage, or a whole valid frame, in the middle
                int at = rnd.nextInt(s.length);
                byte[] ins = rnd.nextBoolean() ? random(rnd, 1 + rnd.nextInt(64))
                        : validFrame(rnd, TYPES[rnd.nextInt(TYPES.length)]);
                s = concat(Arrays.copyOf(s, at), ins, Arrays.copyOfRange(s, at, s.length));
            }
            case 15 -> { // swap two neighbouring frames
                if (frames.size() >= 2) {
                    int i = rnd.nextInt(frames.size() - 1);
                    int[] x = frames.get(i);
                    int[] y = frames.get(i + 1);
                    int yEnd = (int) Math.min(s.length, end(y));
                    s = concat(Arrays.copyOf(s, x[0]), Arrays.copyOfRange(s, y[0], yEnd),
                            Arrays.copyOfRange(s, x[0], y[0]), Arrays.copyOfRange(s, yEnd, s.length));
                } else {
                    s[rnd.nextInt(s.length)] = (byte) rnd.nextInt(256);
                }
            }
            case 16 -> { // the magic
                int at = (f == null ? 0 : f[0]) + rnd.nextInt(4);
                if (at < s.length) {
                    s[at] = other(rnd, s[at]);
                }
            }
            default -> s = resize(rnd, s, f);
        }
        return s;
    }

    /**
     * The frame's payload grown or shrunk to a length at or just past one of the bounds, with the
     * length field to match: the frame stays whole, so only the decoder's bounds can reject it.
     */
    private static byte[] resize(Random rnd, byte[] s, int[] f) {
        if (end(f) > s.length) {
            return s;
        }
        int code = u16(s, f[0] + 4);
        // the decoder's bounds: the type's, or the connection's (4097, 65536 or 1 MiB in these cases)
        long[] bounds = {0, 1, MIN_PAYLOAD[code], MAX_PAYLOAD[code], MAX_PAYLOAD[code], UNIT[code], 4097, 65536};
        long bound = bounds[rnd.nextInt(bounds.length)];
        if (bound == BULK) {
            bound = rnd.nextInt(4) == 0 ? 1 << 20 : rnd.nextBoolean() ? 4097 : 65536;
        }
        long len = Math.max(0, bound + rnd.nextInt(3) - 1);
        byte[] payload = Arrays.copyOfRange(s, f[0] + f[1], (int) end(f));
        byte[] resized = Arrays.copyOf(payload, (int) len);
        if (len > payload.length) {
            System.arraycopy(random(rnd, (int) len - payload.length), 0, resized, payload.length,
                    (int) len - payload.length);
        }
        byte[] head = Arrays.copyOfRange(s, f[0], f[0] + f[1]);
        put32(head, 8, len);
        return concat(Arrays.copyOf(s, f[0]), head, resized, Arrays.copyOfRange(s, (int) end(f), s.length));
    }

    /** Where a scanned frame ends by its declared length (may lie past the stream, or past 2 GiB). */
    private static long end(int[] frame) {
        return (long) frame[0] + frame[1] + frame[2];
    }

    static byte[] prefix(Random rnd, byte[] b) {
        return Arrays.copyOf(b, rnd.nextInt(b.length + 1));
    }

    /** The stream cut into pieces, as it may arrive over TCP. */
    static List<byte[]> split(Random rnd, byte[] s) {
        List<byte[]> out = new ArrayList<>();
        int mode = rnd.nextInt(10);
        if (mode < 3 || s.length < 2) {
            out.add(s);
        } else if (mode <= 4) { // the first bytes (a header or two) a few at a time, then the rest
            int at = 0;
            int head = Math.min(s.length, 8 + rnd.nextInt(120));
            while (at < head) {
                int n = Math.min(head - at, 1 + rnd.nextInt(3));
                out.add(Arrays.copyOfRange(s, at, at + n));
                at += n;
            }
            if (at < s.length) {
                out.add(Arrays.copyOfRange(s, at, s.length));
            }
        } else {
            int pieces = 2 + rnd.nextInt(7);
            int[] cuts = new int[pieces - 1];
            for (int i = 0; i < cuts.length; i++) {
                cuts[i] = rnd.nextInt(s.length + 1);
            }
            Arrays.sort(cuts);
            int at = 0;
            for (int c : cuts) {
                out.add(Arrays.copyOfRange(s, at, c));
                at = c;
            }
            out.add(Arrays.copyOfRange(s, at, s.length));
        }
        return out;
    }

    // =====================================================================================
    // Reading a yielded frame through the flyweight
    // =====================================================================================

    /** Reads every field the frame's type has; fails on any exception. */
    static void readEveryField(PeerFrame f, ByteBuf buf) {
        check(f.frameLength() == buf.readableBytes(), "frameLength " + f.frameLength() + " != buffer "
                + buf.readableBytes());
        f.flags();
        f.fua();
        f.payloadChecksummed();
        f.checksum();
        check(f.payloadIndex() - buf.readerIndex() == f.type().headBytes(), "payloadIndex");
        check(f.payload().readableBytes() == f.payloadLength(), "payload slice length");
        check(!f.toString().isEmpty(), "toString");
        switch (f.type()) {
            case HELLO -> {
                f.versionMin();
                f.versionMax();
                f.nodeId();
                f.volumeSizeBytes();
                PeerFrame.protocol(f.protocolCode());
                f.authAlgorithm();
                f.challenge(new byte[PeerFrame.CHALLENGE_BYTES]);
                check(!f.resourceName().isEmpty(), "empty resource name");
                f.helloChannel();
            }
            case AUTH_RESPONSE -> f.hmac(new byte[PeerFrame.HMAC_BYTES]);
            case REFUSE -> {
                f.reasonCode();
                check(f.refuseReason() != null, "refuseReason null");
                check(f.message() != null, "message null");
            }
            case DISCONNECT -> {
                f.reasonCode();
                check(f.disconnectReason() != null, "disconnectReason null");
                check(f.message() != null, "message null");
            }
            case UUIDS -> {
                f.currentUuid();
                f.bitmapUuid();
                f.uuidFlags();
                for (int i = 0; i < f.historyCount(); i++) {
                    f.history(i);
                }
                check(f.generationIds().history().size() == f.historyCount(), "generationIds history");
                f.dataTerm();
                f.followers();
            }
            case STATE -> {
                check(f.role() != null && f.diskState() != null, "role/disk null");
                f.stateFlags();
                f.term();
            }
            case DATA -> {
                f.term();
                f.barrier();
                f.sequence();
                f.offset();
                f.targets();
            }
            case RECV_ACK, WRITE_ACK, NEG_ACK -> {
                f.barrier();
                f.sequence();
            }
            case BARRIER -> {
                f.term();
                f.barrier();
            }
            case BARRIER_ACK -> {
                f.barrier();
                check(f.count() >= 0, "count negative");
            }
            case BITMAP -> {
                f.bitOffset();
                for (int i = 0; i < f.runCount(); i++) {
                    check(f.run(i) >= 0, "run negative");
                }
            }
            case RS_REQUEST -> {
                f.offset();
                check(f.requestLength() >= 0, "requestLength negative");
            }
            case RS_DATA -> {
                f.term();
                f.offset();
            }
            case AUTH_OK, PING, PING_ACK -> {
            }
        }
        // a field the type lacks: the documented IllegalStateException
        try {
            if (f.type() == PeerFrameType.HELLO) {
                f.term();
            } else {
                f.nodeId();
            }
            throw new AssertionError("a " + f.type() + " frame answered a field it does not have");
        } catch (IllegalStateException expected) {
            // documented
        }
    }

    private static void check(boolean ok, String what) {
        if (!ok) {
            throw new AssertionError(what);
        }
    }

    private static String strictUtf8(ByteBuf b) {
        try {
            return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(b.nioBuffer()).toString();
        } catch (CharacterCodingException e) {
            return null;
        }
    }

    /**
     * The frame encoded again by {@link PeerFrameEncoder} from what the flyweight reads, or null if
     * the encoder cannot produce it (a reserved field set, an unknown enum code, a control frame
     * without its payload checksum, text that is not UTF-8): then the bytes must be identical.
     */
    static byte[] reencode(PeerFrame f) {
        ByteBuf b = f.buffer();
        int base = b.readerIndex();
        int flags = f.flags();
        boolean bulk = f.type() == PeerFrameType.DATA || f.type() == PeerFrameType.RS_DATA;
        if (!bulk && flags != PeerFrame.FLAG_PAYLOAD_CHECKSUMMED) {
            return null;
        }
        PeerFrameEncoder enc = new PeerFrameEncoder((flags & PeerFrame.FLAG_PAYLOAD_CHECKSUMMED) != 0);
        switch (f.type()) {
            case HELLO -> {
                ReplicationProtocol p = PeerFrame.protocol(f.protocolCode());
                String name = strictUtf8(f.payload());
                if (p == null || name == null) {
                    return null;
                }
                byte[] ch = new byte[PeerFrame.CHALLENGE_BYTES];
                f.challenge(ch);
                return bytes(enc.hello(GEN, f.versionMin(), f.versionMax(), f.nodeId(), f.volumeSizeBytes(), p,
                        f.authAlgorithm(), ch, name, f.helloChannel()));
            }
            case AUTH_RESPONSE -> {
                byte[] h = new byte[PeerFrame.HMAC_BYTES];
                f.hmac(h);
                return bytes(enc.authResponse(GEN, h));
            }
            case AUTH_OK -> {
                return bytes(enc.authOk(GEN));
            }
            case PING -> {
                return bytes(enc.ping(GEN));
            }
            case PING_ACK -> {
                return bytes(enc.pingAck(GEN));
            }
            case REFUSE, DISCONNECT -> {
                String m = strictUtf8(f.payload());
                if (m == null || b.getUnsignedShort(base + PeerFrame.REASON_RESERVED_OFFSET) != 0) {
                    return null;
                }
                if (f.type() == PeerFrameType.REFUSE) {
                    RefuseReason r = f.refuseReason();
                    return r.code() != f.reasonCode() ? null : bytes(enc.refuse(GEN, r, m));
                }
                DisconnectReason r = f.disconnectReason();
                return r.code() != f.reasonCode() ? null : bytes(enc.disconnect(GEN, r, m));
            }
            case UUIDS -> {
                long[] h = new long[f.historyCount()];
                for (int i = 0; i < h.length; i++) {
                    h[i] = f.history(i);
                }
                if (b.getInt(base + PeerFrame.UUIDS_RESERVED_OFFSET) != 0) {
                    return null;
                }
                return bytes(enc.uuids(GEN, f.currentUuid(), f.bitmapUuid(), f.uuidFlags(), f.dataTerm(), f.followers(),
                        h));
            }
            case STATE -> {
                if (PeerFrame.roleCode(f.role()) != b.getUnsignedByte(base + PeerFrame.STATE_ROLE_OFFSET)
                        || PeerFrame.diskCode(f.diskState()) != b.getUnsignedByte(base + PeerFrame.STATE_DISK_OFFSET)
                        || b.getInt(base + PeerFrame.STATE_RESERVED_OFFSET) != 0) {
                    return null;
                }
                return bytes(enc.state(GEN, f.role(), f.diskState(), f.stateFlags(), f.term()));
            }
            case DATA -> {
                ByteBuf payload = f.payload();
                if (b.getInt(base + PeerFrame.DATA_RESERVED_OFFSET) != 0) {
                    return null;
                }
                return concat(bytes(enc.dataHead(GEN, f.term(), f.barrier(), f.sequence(), f.offset(), f.targets(),
                        f.fua(), payload)), ByteBufUtil.getBytes(payload));
            }
            case RS_DATA -> {
                ByteBuf payload = f.payload();
                return concat(bytes(enc.rsDataHead(GEN, f.term(), f.offset(), payload)),
                        ByteBufUtil.getBytes(payload));
            }
            case RECV_ACK -> {
                return bytes(enc.recvAck(GEN, f.barrier(), f.sequence()));
            }
            case WRITE_ACK -> {
                return bytes(enc.writeAck(GEN, f.barrier(), f.sequence()));
            }
            case NEG_ACK -> {
                return bytes(enc.negAck(GEN, f.barrier(), f.sequence()));
            }
            case BARRIER -> {
                return bytes(enc.barrier(GEN, f.term(), f.barrier()));
            }
            case BARRIER_ACK -> {
                return b.getInt(base + PeerFrame.BARRIER_ACK_RESERVED_OFFSET) != 0 ? null
                        : bytes(enc.barrierAck(GEN, f.barrier(), f.count()));
            }
            case PEER_ACK -> {
                return b.getInt(base + PeerFrame.PEER_ACK_RESERVED_OFFSET) != 0 ? null
                        : bytes(enc.peerAck(GEN, f.barrier(), f.holders()));
            }
            case BITMAP -> {
                int[] runs = new int[f.runCount()];
                for (int i = 0; i < runs.length; i++) {
                    runs[i] = (int) f.run(i);
                }
                return bytes(enc.bitmap(GEN, f.bitOffset(), runs, runs.length));
            }
            case RS_REQUEST -> {
                return b.getInt(base + PeerFrame.RS_REQUEST_RESERVED_OFFSET) != 0 ? null
                        : bytes(enc.rsRequest(GEN, f.offset(), f.requestLength()));
            }
            default -> throw new AssertionError(f.type());
        }
    }

    // =====================================================================================
    // 1. The decoder
    // =====================================================================================

    @Test
    @Timeout(90)
    void decoderYieldsExactlyTheValidFramesOrAPeerProtocolException() {
        bounded(80, () -> {
            Random master = new Random(SEED ^ 0xDEC0DE);
            int cases = CASES * 3;
            int[] outcomes = new int[End.values().length];
            int frames = 0;
            for (int i = 0; i < cases; i++) {
                long caseSeed = master.nextLong();
                current = "decoder case " + i + " (case seed " + caseSeed + ")";
                try {
                    DecoderOutcome o = decoderCase(new Random(caseSeed), TYPES[i % TYPES.length]);
                    outcomes[o.end().ordinal()]++;
                    frames += o.frames();
                } catch (Throwable t) {
                    throw new AssertionError(current + ": " + t, t);
                }
            }
            System.out.println("PeerProtocolFuzzTest decoder: " + cases + " cases, " + frames + " frames yielded; "
                    + "streams clean/invalid/truncated " + Arrays.toString(outcomes));
            check(outcomes[End.CLEAN.ordinal()] > cases / 20 && outcomes[End.INVALID.ordinal()] > cases / 20
                    && outcomes[End.TRUNCATED.ordinal()] > cases / 50, "the generator lost its balance: "
                    + Arrays.toString(outcomes));
        });
    }

    record DecoderOutcome(End end, int frames) {
    }

    /** One stream through a fresh decoder; {@code first} is the type of its first frame. */
    private static DecoderOutcome decoderCase(Random rnd, PeerFrameType first) {
        int kind = rnd.nextInt(10);
        int maxPayload = kind == 0 ? PeerFrameDecoder.DEFAULT_MAX_PAYLOAD_BYTES : switch (rnd.nextInt(4)) {
            case 0 -> 4097;
            case 1 -> 65536;
            default -> PeerFrameDecoder.DEFAULT_MAX_PAYLOAD_BYTES;
        };
        List<byte[]> valid = new ArrayList<>();
        valid.add(validFrame(rnd, first));
        for (int n = rnd.nextInt(4); n > 0; n--) {
            valid.add(validFrame(rnd, TYPES[rnd.nextInt(TYPES.length)]));
        }
        byte[] clean = concat(valid.toArray(new byte[0][]));
        byte[] stream = switch (kind) {
            case 0 -> clean;
            case 1 -> { // garbage, sometimes behind a plausible magic
                byte[] g = random(rnd, rnd.nextInt(600));
                if (g.length >= 4 && rnd.nextBoolean()) {
                    put32(g, 0, MAGIC);
                }
                yield g;
            }
            case 2 -> Arrays.copyOf(clean, rnd.nextInt(clean.length)); // cut short
            default -> mutate(rnd, clean, 1 + rnd.nextInt(4));
        };
        if (kind != 0 && rnd.nextInt(10) < 6) {
            fixChecksums(stream);
        }
        Parsed want = parse(stream, maxPayload);
        if (kind == 0 && want.end() != End.CLEAN) {
            throw new AssertionError("the reference rejects the encoder's own frames: " + want.end());
        }

        EmbeddedChannel ch = new EmbeddedChannel(new PeerFrameDecoder(maxPayload));
        List<Throwable> errors = new ArrayList<>();
        List<byte[]> got = new ArrayList<>();
        try {
            for (byte[] piece : split(rnd, stream)) {
                ByteBuf in = rnd.nextBoolean() ? POOLED.directBuffer(piece.length) : POOLED.heapBuffer(piece.length);
                in.writeBytes(piece);
                try {
                    ch.writeInbound(in);
                } catch (Throwable t) {
                    errors.add(t);
                }
                drain(ch, got, kind == 0);
            }
        } finally {
            try {
                ch.finish(); // closes: a frame cut short is reported here
            } catch (Throwable t) {
                errors.add(t);
            }
            drain(ch, got, kind == 0);
            ch.releaseOutbound();
        }

        for (Throwable t : errors) {
            if (!(t instanceof PeerProtocolException) || t.getMessage() == null
                    || !t.getMessage().contains("stream byte")) {
                throw new AssertionError("the decoder raised " + t + " (only a PeerProtocolException saying where"
                        + " in the stream is allowed)", t);
            }
        }
        check(errors.size() <= 1, "more than one exception from one stream: " + errors);
        check(errors.isEmpty() == (want.end() == End.CLEAN), "stream " + want.end() + " (reference) but the decoder "
                + (errors.isEmpty() ? "raised nothing" : "raised " + errors.get(0).getMessage()));
        check(got.size() == want.frames().size(), "the decoder yielded " + got.size() + " frames, the reference "
                + want.frames().size() + " (" + want.end() + ")");
        for (int i = 0; i < got.size(); i++) {
            if (!Arrays.equals(got.get(i), want.frame(stream, i))) {
                throw new AssertionError("frame " + i + " differs from the reference's");
            }
        }
        return new DecoderOutcome(want.end(), got.size());
    }

    /** Takes every frame the channel yielded: reads it, re-encodes it, releases it. */
    private static void drain(EmbeddedChannel ch, List<byte[]> got, boolean mustReencode) {
        for (Object o; (o = ch.readInbound()) != null; ) {
            if (!(o instanceof ByteBuf buf)) {
                throw new AssertionError("the decoder yielded a " + o.getClass());
            }
            try {
                byte[] bytes = ByteBufUtil.getBytes(buf);
                got.add(bytes);
                PeerFrame f = new PeerFrame().wrap(buf);
                try {
                    readEveryField(f, buf);
                    byte[] again = reencode(f);
                    if (again == null && mustReencode) {
                        throw new AssertionError("an unmutated " + f.type() + " frame cannot be encoded again");
                    }
                    if (again != null && !Arrays.equals(again, bytes)) {
                        throw new AssertionError(f.type() + " frame encoded again differs: yielded "
                                + ByteBufUtil.hexDump(bytes, 0, Math.min(bytes.length, 160)) + ", encoded "
                                + ByteBufUtil.hexDump(again, 0, Math.min(again.length, 160)));
                    }
                } catch (RuntimeException e) {
                    throw new AssertionError("reading a yielded " + f.type() + " frame threw " + e, e);
                }
            } finally {
                buf.release();
            }
        }
    }

    // =====================================================================================
    // 2. The handshake, with a meddler between the two ends
    // =====================================================================================

    private static final long GIB = 1L << 30;
    private static final Duration HANDSHAKE_TIMEOUT = Duration.ofSeconds(6);

    /** Frames as they reach the handshake (behind the decoder), copied. */
    private static final class Tap extends ChannelInboundHandlerAdapter {
        final List<byte[]> frames = new ArrayList<>();

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            frames.add(ByteBufUtil.getBytes((ByteBuf) msg));
            ctx.fireChannelRead(msg);
        }
    }

    /** What passes the handshake: its events, frames after it, exceptions after it. */
    private static final class Recorder extends ChannelInboundHandlerAdapter {
        final List<Object> events = new ArrayList<>();
        final List<ByteBuf> frames = new ArrayList<>();
        final List<Throwable> errors = new ArrayList<>();

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            events.add(evt);
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            frames.add((ByteBuf) msg);
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            errors.add(cause);
        }
    }

    private static final class HandshakeEnd {
        final String name;
        final HandshakeSettings settings;
        /** The end that accepted the connection: it must answer only after a right answer from the dialler. */
        final boolean accepting;
        final EmbeddedChannel channel;
        final Tap tap = new Tap();
        final Recorder recorder = new Recorder();
        /** The challenge of the first HELLO this end sent (before any meddling). */
        byte[] ownChallenge;
        final List<Throwable> escaped = new ArrayList<>();

        HandshakeEnd(String name, HandshakeSettings settings, boolean accepting) {
            this.name = name;
            this.settings = settings;
            this.accepting = accepting;
            this.channel = new EmbeddedChannel(new PeerFrameDecoder(), tap,
                    new PeerHandshake(settings, PeerFrame.CHANNEL_DATA, accepting), recorder);
        }

        /** Whether a frame this end received, up to now, is an AUTH_RESPONSE with the right HMAC. */
        boolean receivedTheRightAnswer() throws Exception {
            if (settings.sharedSecret().isEmpty() || ownChallenge == null) {
                return false;
            }
            byte[] expected = hmac(settings.sharedSecret().get(), ownChallenge, settings.peerNodeId());
            for (byte[] f : tap.frames) {
                if (u16(f, 4) == CODE_AUTH_RESPONSE && f.length >= HEADER + FIXED[CODE_AUTH_RESPONSE]
                        && Arrays.equals(expected, Arrays.copyOfRange(f, PeerFrame.AUTH_RESPONSE_HMAC_OFFSET,
                        PeerFrame.AUTH_RESPONSE_HMAC_OFFSET + PeerFrame.HMAC_BYTES))) {
                    return true;
                }
            }
            return false;
        }

        void release() {
            recorder.frames.forEach(ByteBuf::release);
            recorder.frames.clear();
            channel.finishAndReleaseAll();
        }
    }

    private static HandshakeSettings settings(String local, int localId, String peer, int peerId, String secret) {
        return new HandshakeSettings("r0", local, localId, peer, peerId, GIB, ReplicationProtocol.C,
                Optional.ofNullable(secret), HANDSHAKE_TIMEOUT, PeerFrame.PROTOCOL_VERSION_MIN,
                PeerFrame.PROTOCOL_VERSION_MAX);
    }

    @Test
    @Timeout(90)
    void mutatedHandshakesEndCompletedOrRefusedAndNeverAuthenticateAWrongHmac() {
        bounded(80, () -> {
            Random master = new Random(SEED ^ 0x4A4D5348L);
            int completed = 0;
            int refused = 0;
            for (int i = 0; i < CASES; i++) {
                long caseSeed = master.nextLong();
                current = "handshake case " + i + " (case seed " + caseSeed + ")";
                try {
                    int c = handshakeCase(new Random(caseSeed));
                    completed += c;
                    refused += 2 - c;
                } catch (Throwable t) {
                    throw new AssertionError(current + ": " + t, t);
                }
            }
            System.out.println("PeerProtocolFuzzTest handshake: " + CASES + " cases, ends completed/refused "
                    + completed + "/" + refused);
            check(completed > CASES / 10 && refused > CASES / 10, "the meddler lost its balance: completed "
                    + completed + ", refused " + refused);
        });
    }

    /** @return how many ends completed */
    private static int handshakeCase(Random rnd) throws Exception {
        String secretA;
        String secretB;
        switch (rnd.nextInt(6)) {
            case 0, 1 -> secretA = secretB = null;
            case 2, 3, 4 -> secretA = secretB = SECRET;
            default -> {
                secretA = SECRET;
                secretB = rnd.nextBoolean() ? "other" : null;
            }
        }
        // as in the engine, one end dialled and the other accepted; sometimes both answer at once (a dialler
        // against the older order, which must still interwork)
        boolean bAccepts = rnd.nextInt(4) != 0;
        HandshakeEnd a = new HandshakeEnd("alpha", settings("alpha", 0, "beta", 1, secretA), false);
        HandshakeEnd b = new HandshakeEnd("beta", settings("beta", 1, "alpha", 0, secretB), bAccepts);
        Meddler m = new Meddler(rnd);
        try {
            m.exchange(a, b);
            for (int round = 0; round < 2 && (a.recorder.events.isEmpty() || b.recorder.events.isEmpty()); round++) {
                for (HandshakeEnd e : List.of(a, b)) {
                    e.channel.advanceTimeBy(HANDSHAKE_TIMEOUT.toMillis() + 1000, TimeUnit.MILLISECONDS);
                    e.channel.runScheduledPendingTasks();
                }
                m.exchange(a, b);
            }
            int completed = 0;
            for (HandshakeEnd e : List.of(a, b)) {
                completed += checkEnd(e, m.log);
            }
            if (!java.util.Objects.equals(secretA, secretB) && completed > 0) {
                throw new AssertionError("completed although the secrets differ (" + secretA + " / " + secretB
                        + "); meddling: " + m.log);
            }
            return completed;
        } finally {
            m.releaseHeld();
            a.release();
            b.release();
        }
    }

    /** @return 1 if {@code e} completed */
    private static int checkEnd(HandshakeEnd e, List<String> log) throws Exception {
        String who = e.name + " (meddling: " + log + ")";
        if (!e.escaped.isEmpty()) {
            throw new AssertionError(who + ": an exception left the pipeline: " + e.escaped.get(0), e.escaped.get(0));
        }
        for (Throwable t : e.recorder.errors) {
            if (!(t instanceof PeerProtocolException)) {
                throw new AssertionError(who + ": after the handshake the pipeline got " + t, t);
            }
        }
        if (e.recorder.events.size() != 1) {
            throw new AssertionError(who + ": expected one Completed or Refused within the timeout, got "
                    + e.recorder.events);
        }
        Object ev = e.recorder.events.get(0);
        if (ev instanceof PeerHandshake.Refused r) {
            check(!e.channel.isOpen(), who + ": refused (" + r + ") but the channel is open");
            check(r.message() != null && !r.message().isEmpty(), who + ": a refusal without a message");
            return 0;
        }
        PeerHandshake.Completed c = (PeerHandshake.Completed) ev;
        HandshakeSettings s = e.settings;
        check(c.peerNodeId() == s.peerNodeId(), who + ": completed with " + c);
        check(c.authenticated() == s.sharedSecret().isPresent(), who + ": " + c + " with secret "
                + s.sharedSecret().isPresent());
        // what made it complete must have been a HELLO that passes every check
        check(!e.tap.frames.isEmpty(), who + ": completed without receiving a frame");
        byte[] hello = e.tap.frames.get(0);
        check(u16(hello, 4) == CODE_HELLO, who + ": completed but the first frame received was type "
                + u16(hello, 4));
        ByteBuf hb = Unpooled.wrappedBuffer(hello);
        PeerFrame h = new PeerFrame().wrap(hb);
        byte[] peerChallenge = new byte[PeerFrame.CHALLENGE_BYTES];
        h.challenge(peerChallenge);
        check(h.nodeId() == s.peerNodeId() && h.resourceName().equals(s.resourceName())
                && h.volumeSizeBytes() == s.volumeSizeBytes() && PeerFrame.protocol(h.protocolCode()) == s.protocol()
                && h.helloChannel() == PeerFrame.CHANNEL_DATA
                && h.authAlgorithm() == (s.sharedSecret().isPresent() ? PeerFrame.AUTH_HMAC_SHA256 : PeerFrame.AUTH_NONE)
                && Math.max(h.versionMin(), s.versionMin()) <= Math.min(h.versionMax(), s.versionMax())
                && h.versionMin() <= h.versionMax()
                && !Arrays.equals(peerChallenge, e.ownChallenge), who + ": completed on an unacceptable HELLO " + h);
        check(c.protocolVersion() == Math.min(h.versionMax(), s.versionMax()), who + ": agreed version");
        boolean authOk = false;
        byte[] response = null;
        for (byte[] fr : e.tap.frames) {
            int code = u16(fr, 4);
            if (code == CODE_AUTH_OK) {
                authOk = true;
            } else if (code == CODE_AUTH_RESPONSE && response == null) {
                response = Arrays.copyOfRange(fr, PeerFrame.AUTH_RESPONSE_HMAC_OFFSET,
                        PeerFrame.AUTH_RESPONSE_HMAC_OFFSET + PeerFrame.HMAC_BYTES);
            }
        }
        check(authOk, who + ": completed without the peer's AUTH_OK");
        if (s.sharedSecret().isPresent()) {
            byte[] expected = hmac(s.sharedSecret().get(), e.ownChallenge, s.peerNodeId());
            check(response != null, who + ": completed authenticated without an AUTH_RESPONSE");
            check(Arrays.equals(response, expected), who + ": completed authenticated on a wrong HMAC "
                    + ByteBufUtil.hexDump(response));
        }
        return 1;
    }

    /** HMAC-SHA256(secret, challenge ++ nodeId as u32), as PeerFrame's javadoc defines AUTH_RESPONSE. */
    static byte[] hmac(String secret, byte[] challenge, int nodeId) throws Exception {
        Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(secret.getBytes(StandardCharsets.UTF_8), "HmacSHA256"));
        mac.update(challenge);
        mac.update(ByteBuffer.allocate(4).putInt(nodeId).array());
        return mac.doFinal();
    }

    /**
     * Sits on the wire between two ends: each frame written is, at the case's rate, mutated, dropped,
     * duplicated, held back, preceded by an injected frame, reflected, or answered by closing the
     * receiver; a bounded number of times per case, so every exchange ends.
     */
    private static final class Meddler {
        private final Random rnd;
        private final double rate;
        private int budget;
        private final List<String> log = new ArrayList<>();
        private byte[] heldBack;
        private HandshakeEnd heldFor;

        Meddler(Random rnd) {
            this.rnd = rnd;
            this.rate = new double[]{0, 0.15, 0.4, 1.0}[rnd.nextInt(4)];
            this.budget = 1 + rnd.nextInt(6);
        }

        void exchange(HandshakeEnd a, HandshakeEnd b) throws Exception {
            for (int round = 0; ; round++) {
                if (round > 200) {
                    throw new AssertionError("the handshake never went quiet: " + log);
                }
                boolean moved = carry(a, b) | carry(b, a);
                if (!moved && heldBack != null) {
                    deliver(heldFor, heldBack);
                    heldBack = null;
                    moved = true;
                }
                if (!moved) {
                    return;
                }
            }
        }

        private boolean carry(HandshakeEnd from, HandshakeEnd to) throws Exception {
            boolean moved = false;
            for (Object o; (o = from.channel.readOutbound()) != null; ) {
                moved = true;
                byte[] m;
                ByteBuf buf = (ByteBuf) o;
                try {
                    m = ByteBufUtil.getBytes(buf);
                } finally {
                    buf.release();
                }
                if (from.ownChallenge == null && m.length >= HEADER + FIXED[CODE_HELLO] && u16(m, 4) == CODE_HELLO) {
                    from.ownChallenge = Arrays.copyOfRange(m, PeerFrame.HELLO_CHALLENGE_OFFSET,
                            PeerFrame.HELLO_CHALLENGE_OFFSET + PeerFrame.CHALLENGE_BYTES);
                }
                if (from.accepting && u16(m, 4) == CODE_AUTH_RESPONSE && !from.receivedTheRightAnswer()) {
                    throw new AssertionError(from.name + ", the accepting end, answered the challenge before it"
                            + " received the right answer to its own; meddling: " + log);
                }
                if (budget > 0 && rnd.nextDouble() < rate) {
                    budget--;
                    meddle(from, to, m);
                } else {
                    deliver(to, m);
                }
            }
            return moved;
        }

        private void meddle(HandshakeEnd from, HandshakeEnd to, byte[] m) {
            String what = from.name + "'s type " + (m.length >= 6 ? u16(m, 4) : -1) + ": ";
            switch (rnd.nextInt(10)) {
                case 0, 1 -> {
                    byte[] x = mutate(rnd, m, 1 + rnd.nextInt(3));
                    boolean fixed = rnd.nextBoolean();
                    if (fixed) {
                        fixChecksums(x);
                    }
                    log.add(what + "mutated" + (fixed ? " (checksum repaired)" : ""));
                    deliver(to, x);
                }
                case 2 -> log.add(what + "dropped");
                case 3 -> {
                    log.add(what + "duplicated");
                    deliver(to, m);
                    deliver(to, m);
                }
                case 4 -> {
                    PeerFrameType t = switch (rnd.nextInt(6)) {
                        case 0 -> PeerFrameType.AUTH_OK;
                        case 1 -> PeerFrameType.AUTH_RESPONSE;
                        case 2 -> PeerFrameType.HELLO;
                        case 3 -> PeerFrameType.REFUSE;
                        default -> TYPES[rnd.nextInt(TYPES.length)];
                    };
                    byte[] inject = t == PeerFrameType.HELLO ? helloAs(from) : validFrame(rnd, t);
                    log.add(what + "preceded by an injected " + t);
                    deliver(to, inject);
                    deliver(to, m);
                }
                case 5 -> { // a forged answer: the right shape, a random HMAC
                    if (u16(m, 4) == CODE_AUTH_RESPONSE && m.length == HEADER + FIXED[CODE_AUTH_RESPONSE]) {
                        byte[] x = m.clone();
                        System.arraycopy(random(rnd, PeerFrame.HMAC_BYTES), 0, x, PeerFrame.AUTH_RESPONSE_HMAC_OFFSET,
                                PeerFrame.HMAC_BYTES);
                        fixChecksums(x);
                        log.add(what + "HMAC forged");
                        deliver(to, x);
                    } else {
                        log.add(what + "delivered in bytes");
                        for (byte x : m) {
                            deliver(to, new byte[]{x});
                        }
                    }
                }
                case 6 -> { // reflection: the receiver's own challenge in the sender's HELLO
                    if (u16(m, 4) == CODE_HELLO && to.ownChallenge != null && m.length >= HEADER + FIXED[CODE_HELLO]) {
                        byte[] x = m.clone();
                        System.arraycopy(to.ownChallenge, 0, x, PeerFrame.HELLO_CHALLENGE_OFFSET,
                                PeerFrame.CHALLENGE_BYTES);
                        fixChecksums(x);
                        log.add(what + "challenge reflected");
                        deliver(to, x);
                    } else {
                        log.add(what + "truncated");
                        deliver(to, prefix(rnd, m));
                    }
                }
                case 7 -> {
                    if (heldBack == null) {
                        log.add(what + "held back");
                        heldBack = m;
                        heldFor = to;
                    } else {
                        deliver(to, m);
                    }
                }
                case 8 -> {
                    log.add(what + "receiver closed");
                    deliver(to, m);
                    to.channel.close();
                }
                default -> {
                    log.add(what + "followed by garbage");
                    deliver(to, concat(m, random(rnd, 1 + rnd.nextInt(40))));
                }
            }
        }

        /** A HELLO that passes {@code from}'s peer's checks, with a fresh challenge. */
        private byte[] helloAs(HandshakeEnd from) {
            HandshakeSettings s = from.settings;
            return bytes(new PeerFrameEncoder().hello(GEN, s.versionMin(), s.versionMax(), s.localNodeId(),
                    s.volumeSizeBytes(), s.protocol(), s.sharedSecret().isPresent() ? PeerFrame.AUTH_HMAC_SHA256
                            : PeerFrame.AUTH_NONE, random(rnd, PeerFrame.CHALLENGE_BYTES), s.resourceName()));
        }

        private void deliver(HandshakeEnd to, byte[] m) {
            for (byte[] piece : rnd.nextInt(4) == 0 ? split(rnd, m) : List.of(m)) {
                if (!to.channel.isOpen()) {
                    return;
                }
                ByteBuf in = to.channel.alloc().buffer(piece.length);
                in.writeBytes(piece);
                try {
                    to.channel.writeInbound(in);
                } catch (Throwable t) {
                    to.escaped.add(t);
                }
            }
        }

        void releaseHeld() {
            heldBack = null;
        }
    }

    // =====================================================================================
    // 3. A live node
    // =====================================================================================

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    /** The live resource's handshake timeout (DRBD's timeout, in tenths of a second in the config). */
    private static final int LIVE_TIMEOUT_MS = 1000;

    private ClusterConfig liveConfig() throws Exception {
        // alpha has the higher id, so beta dials and alpha's listener serves the real session too
        String toml = "[cluster]\nname = \"t\"\nquorum = \"off\"\n"
                + "[[node]]\nname = \"alpha\"\nid = 1\naddress = \"127.0.0.1:" + freePort() + "\"\nnbd = \"127.0.0.1:"
                + freePort() + "\"\nadmin = \"" + dir.resolve("a.sock") + "\"\n"
                + "[[node]]\nname = \"beta\"\nid = 0\naddress = \"127.0.0.1:" + freePort() + "\"\nnbd = \"127.0.0.1:"
                + freePort() + "\"\nadmin = \"" + dir.resolve("b.sock") + "\"\n"
                + "[[resource]]\nname = \"r0\"\nsize = \"64MiB\"\nprotocol = \"C\"\n"
                + "connect-int = 2\nping-int = 2\ntimeout = " + LIVE_TIMEOUT_MS / 100 + "\nshared-secret = \"" + SECRET
                + "\"\n"
                + "[resource.on.alpha]\ndisk = \"" + dir.resolve("alpha.img") + "\"\n"
                + "[resource.on.beta]\ndisk = \"" + dir.resolve("beta.img") + "\"\n";
        return ClusterConfig.parse(toml, "fuzz.toml");
    }

    /**
     * Checks the engine's threads: each node's two event loops and one resource worker, at most one
     * applier per session (it starts with the session's first write), nothing per connection.
     */
    private static void checkEngineThreads() throws InterruptedException {
        String[] last = {null};
        try {
            await("the engine's threads of two nodes with a session each", () -> (last[0] = engineThreads()) == null);
        } catch (AssertionError e) {
            throw new AssertionError(e.getMessage() + ": " + last[0], e);
        }
    }

    /** @return what is wrong with the engine's threads, or null */
    private static String engineThreads() {
        int loops = 0;
        int workers = 0;
        int appliers = 0;
        for (Thread t : Thread.getAllStackTraces().keySet()) {
            String n = t.getName();
            if (!t.isAlive()) {
                continue;
            }
            if (n.startsWith("repl-")) {
                loops++;
            } else if (n.startsWith("resource-")) {
                workers++;
            } else if (n.startsWith("apply-")) {
                appliers++;
            }
        }
        return loops <= 4 && workers == 2 && appliers <= 2 ? null
                : loops + " event loops, " + workers + " resource workers, " + appliers + " appliers";
    }

    /** Region of the volume the writer fills during the fuzz. */
    private static final int REGION = 8 << 20;
    private static final int BLOCK = 64 << 10;

    @Test
    @Timeout(150)
    void aLiveNodeKeepsItsSessionAndClosesEveryStrangerUnderThousandsOfHostileConnections() throws Exception {
        ClusterConfig cfg = liveConfig();
        createMd("alpha", 1, 0);
        createMd("beta", 0, 1);
        ReplicationNode a = ReplicationNode.start(cfg, "alpha", FaultInjection.NONE, 1 << 20);
        nodes.add(a);
        ReplicationNode b = ReplicationNode.start(cfg, "beta", FaultInjection.NONE, 1 << 20);
        nodes.add(b);
        bounded(140, () -> liveFuzz(a, b));
    }

    private void liveFuzz(ReplicationNode a, ReplicationNode b) throws Exception {
        a.upAll();
        b.upAll();
        Resource ra = a.resource("r0");
        Resource rb = b.resource("r0");
        PeerLink ab = ra.links.get(0);
        PeerLink ba = rb.links.get(0);
        await("connected", () -> ab.repl == ReplState.ESTABLISHED && ba.repl == ReplState.ESTABLISHED);
        ra.newCurrentUuid(true);
        await("both UpToDate", () -> ra.disk() == DiskState.UP_TO_DATE && rb.disk() == DiskState.UP_TO_DATE);
        ra.primary(false);
        await("beta sees alpha Primary", () -> ba.peerRole == Role.PRIMARY);
        Session session = ab.session;
        int channels = a.acceptedChannels();
        check(channels == 2, "alpha accepted " + channels + " channels from beta; expected data and meta");
        InetSocketAddress target = a.self().address().toSocketAddress();
        InetSocketAddress betaTarget = b.self().address().toSocketAddress();
        Random master = new Random(SEED ^ 0x11FEL);

        List<Holdout> holdouts = openHoldouts(new Random(master.nextLong()), target, b.self().id());
        byte[] model = new byte[REGION];
        AtomicBoolean stop = new AtomicBoolean();
        Queue<String> failures = new ConcurrentLinkedQueue<>();
        AtomicInteger writes = new AtomicInteger();
        long writerSeed = master.nextLong();
        Thread writer = new Thread(() -> writeWhileFuzzing(ra, new Random(writerSeed), model, stop, writes, failures),
                "fuzz-writer");
        writer.start();

        long start = System.nanoTime();
        int cases = CASES;
        int[] kinds = new int[LiveKind.values().length];
        ExecutorService pool = Executors.newFixedThreadPool(16, r -> new Thread(r, "fuzz-client"));
        try {
            List<Future<?>> futures = new ArrayList<>();
            for (int i = 0; i < cases; i++) {
                long caseSeed = master.nextLong();
                int n = i;
                futures.add(pool.submit(() -> {
                    String label = "live case " + n + " (case seed " + caseSeed + ")";
                    current = label;
                    try {
                        LiveKind k = liveCase(new Random(caseSeed), target, betaTarget, a.self().id(),
                                b.self().id());
                        synchronized (kinds) {
                            kinds[k.ordinal()]++;
                        }
                    } catch (Throwable t) {
                        failures.add(label + ": " + t);
                    }
                }));
            }
            for (Future<?> f : futures) {
                f.get();
            }
        } finally {
            pool.shutdownNow();
            stop.set(true);
            writer.join(10_000);
        }
        long fuzzMs = (System.nanoTime() - start) / 1_000_000;
        current = "checks after the live fuzz";
        System.out.println("PeerProtocolFuzzTest live: " + cases + " connections in " + fuzzMs + " ms, by kind "
                + Arrays.toString(LiveKind.values()) + " " + Arrays.toString(kinds) + "; " + writes.get()
                + " replicated writes meanwhile");
        if (!failures.isEmpty()) {
            throw new AssertionError(failures.size() + " failure(s); the first: "
                    + failures.stream().limit(5).toList());
        }

        // every stalled stranger was closed by alpha, well within its timeouts
        for (Holdout h : holdouts) {
            h.assertClosedByAlpha();
        }

        // the session with beta survived and still replicates
        check(ab.session == session && ab.repl == ReplState.ESTABLISHED && ba.repl == ReplState.ESTABLISHED,
                "alpha's session with beta did not survive: " + ab.status() + " / beta " + ba.status());
        writeBlock(ra, model, new Random(master.nextLong()), 0);
        ra.volume().flush();
        compareWithBeta(model, "after the fuzz");

        // no connection and no thread left behind
        await("alpha's accepted channels back to " + channels + " (now " + a.acceptedChannels() + ")",
                () -> a.acceptedChannels() == channels);
        await("beta's accepted channels back to 0 (now " + b.acceptedChannels() + ")", () -> b.acceptedChannels() == 0);
        checkEngineThreads();

        // alpha still accepts beta: a new session through the listener
        rb.disconnect(null);
        await("alpha lost beta", () -> ab.repl == ReplState.OFF && ab.session == null);
        await("alpha's accepted channels back to 0 (now " + a.acceptedChannels() + ")",
                () -> a.acceptedChannels() == 0);
        rb.connect(null, false);
        await("beta connected again", () -> ab.repl == ReplState.ESTABLISHED && ba.repl == ReplState.ESTABLISHED
                && rb.disk() == DiskState.UP_TO_DATE && (long) ab.status().get("out_of_sync_bytes") == 0);
        check(ab.session != session, "a new session");
        writeBlock(ra, model, new Random(master.nextLong()), REGION - BLOCK);
        ra.volume().flush();
        compareWithBeta(model, "after beta connected again");
        checkEngineThreads();
        await("alpha's accepted channels back to " + channels + " (now " + a.acceptedChannels() + ")",
                () -> a.acceptedChannels() == channels);
    }

    private void writeWhileFuzzing(Resource ra, Random rnd, byte[] model, AtomicBoolean stop, AtomicInteger writes,
                                   Queue<String> failures) {
        try {
            while (!stop.get()) {
                writeBlock(ra, model, rnd, (long) rnd.nextInt(REGION / BLOCK) * BLOCK);
                writes.incrementAndGet();
                Thread.sleep(5);
            }
        } catch (Exception e) {
            failures.add("a write on the Primary failed during the fuzz: " + e);
        }
    }

    /** Writes a seeded block at {@code off} through alpha's volume and into the model. */
    private static void writeBlock(Resource ra, byte[] model, Random rnd, long off) throws Exception {
        byte[] blk = random(rnd, BLOCK);
        ByteBuf buf = Unpooled.wrappedBuffer(blk.clone());
        try {
            ra.volume().write(off, buf, false);
        } finally {
            buf.release();
        }
        System.arraycopy(blk, 0, model, (int) off, BLOCK);
    }

    private void compareWithBeta(byte[] model, String when) throws IOException {
        byte[] alpha = EngineFixture.read(dir.resolve("alpha.img"), 0, REGION);
        byte[] beta = EngineFixture.read(dir.resolve("beta.img"), 0, REGION);
        check(Arrays.equals(alpha, model), when + ": alpha's data differs from what was written");
        check(Arrays.equals(beta, model), when + ": beta's data differs from alpha's (first difference at byte "
                + Arrays.mismatch(alpha, beta) + ")");
    }

    enum LiveKind { GARBAGE, MUTATED_HELLO, UNAUTHENTICATED_FRAMES, WRONG_SECRET, RELAYED_CHALLENGE, STRANGER, DRIBBLE }

    /** One raw connection to alpha (two, one to each node, for the relay). */
    private static LiveKind liveCase(Random rnd, InetSocketAddress target, InetSocketAddress betaTarget, int alphaId,
                                     int betaId) throws Exception {
        int r = rnd.nextInt(100);
        LiveKind kind = r < 15 ? LiveKind.GARBAGE : r < 40 ? LiveKind.MUTATED_HELLO
                : r < 60 ? LiveKind.UNAUTHENTICATED_FRAMES : r < 72 ? LiveKind.WRONG_SECRET
                : r < 77 ? LiveKind.RELAYED_CHALLENGE : r < 88 ? LiveKind.STRANGER : LiveKind.DRIBBLE;
        switch (kind) {
            case GARBAGE -> {
                byte[] g = switch (rnd.nextInt(4)) {
                    case 0 -> "GET / HTTP/1.1\r\nHost: alpha\r\n\r\n".getBytes(StandardCharsets.US_ASCII);
                    case 1 -> validFrame(rnd, TYPES[1 + rnd.nextInt(TYPES.length - 1)]); // not a HELLO first
                    default -> random(rnd, 1 + rnd.nextInt(4096));
                };
                oneShot(rnd, target, g, alphaId, kind);
            }
            case MUTATED_HELLO -> {
                byte[] s = mutate(rnd, helloAsBeta(rnd, betaId), 1 + rnd.nextInt(3));
                if (rnd.nextBoolean()) {
                    fixChecksums(s);
                }
                if (rnd.nextInt(3) == 0) {
                    s = concat(s, validFrame(rnd, PeerFrameType.AUTH_RESPONSE), validFrame(rnd, PeerFrameType.AUTH_OK));
                }
                oneShot(rnd, target, s, alphaId, kind);
            }
            case UNAUTHENTICATED_FRAMES -> {
                byte[] s = helloAsBeta(rnd, betaId);
                for (int n = 1 + rnd.nextInt(4); n > 0; n--) {
                    PeerFrameType t = rnd.nextInt(3) == 0 ? PeerFrameType.AUTH_OK : TYPES[rnd.nextInt(TYPES.length)];
                    byte[] f = validFrame(rnd, t);
                    if (rnd.nextInt(3) == 0) {
                        f = mutate(rnd, f, 1);
                        fixChecksums(f);
                    }
                    s = concat(s, f);
                }
                oneShot(rnd, target, s, alphaId, kind);
            }
            case WRONG_SECRET -> wrongSecret(rnd, target, alphaId, betaId);
            case RELAYED_CHALLENGE -> relayedChallenge(rnd, target, betaTarget, alphaId, betaId);
            case STRANGER -> {
                // a valid HELLO that names something alpha does not serve
                PeerFrameEncoder enc = new PeerFrameEncoder();
                int id = betaId;
                String res = "r0";
                int channel = PeerFrame.CHANNEL_DATA;
                long size = SIZE;
                switch (rnd.nextInt(5)) {
                    case 0 -> id = alphaId;
                    case 1 -> id = 2 + rnd.nextInt(1000);
                    case 2 -> res = resourceName(rnd);
                    case 3 -> channel = 2 + rnd.nextInt(100);
                    default -> size = SIZE + 4096;
                }
                byte[] hello = bytes(enc.hello(GEN, PeerFrame.PROTOCOL_VERSION_MIN, PeerFrame.PROTOCOL_VERSION_MAX,
                        id, size, ReplicationProtocol.C, PeerFrame.AUTH_HMAC_SHA256,
                        random(rnd, PeerFrame.CHALLENGE_BYTES), res, channel));
                oneShot(rnd, target, hello, alphaId, kind);
            }
            case DRIBBLE -> dribble(rnd, target, alphaId, betaId);
        }
        return kind;
    }

    static byte[] helloAsBeta(Random rnd, int betaId) {
        return helloAsBeta(rnd, betaId, random(rnd, PeerFrame.CHALLENGE_BYTES));
    }

    static byte[] helloAsBeta(Random rnd, int betaId, byte[] challenge) {
        return bytes(new PeerFrameEncoder().hello(GEN, PeerFrame.PROTOCOL_VERSION_MIN,
                PeerFrame.PROTOCOL_VERSION_MAX, betaId, SIZE, ReplicationProtocol.C, PeerFrame.AUTH_HMAC_SHA256,
                challenge, "r0", rnd.nextInt(4) == 0 ? PeerFrame.CHANNEL_META : PeerFrame.CHANNEL_DATA));
    }

    private static Socket connect(InetSocketAddress target) throws IOException {
        Socket s = new Socket();
        s.setTcpNoDelay(true);
        s.connect(target, 5_000);
        return s;
    }

    /** Sends {@code stream} (in pieces), maybe half-closes, reads what alpha answers for a while. */
    private static void oneShot(Random rnd, InetSocketAddress target, byte[] stream, int alphaId, LiveKind kind)
            throws Exception {
        boolean halfClose = rnd.nextInt(3) == 0;
        long readMs = rnd.nextInt(30) == 0 ? 1500 : 30;
        byte[] answer;
        try (Socket s = connect(target)) {
            try {
                for (byte[] piece : split(rnd, stream)) {
                    s.getOutputStream().write(piece);
                    s.getOutputStream().flush();
                }
                if (halfClose) {
                    s.shutdownOutput();
                }
            } catch (IOException closedByAlpha) {
                // alpha may close while we still write
            }
            answer = readUntilEndOrIdle(s, readMs, null);
        }
        checkAnswer(answer, alphaId, kind);
    }

    /**
     * What a node sent a stranger: only its HELLO and REFUSE. Never AUTH_OK, and never AUTH_RESPONSE
     * either: the node accepted the connection, so it answers the challenge only after the other end
     * proved the secret, and no stranger here knows it. The stream may end inside a frame only where
     * the node reset the connection.
     *
     * @return the frames the node sent
     */
    private static Parsed checkAnswer(byte[] answer, int nodeId, LiveKind kind) {
        Parsed p = parse(answer, PeerFrameDecoder.DEFAULT_MAX_PAYLOAD_BYTES);
        String node = "node " + nodeId;
        check(p.end() != End.INVALID, kind + ": " + node + " sent bytes that are not frames");
        for (int i = 0; i < p.frames().size(); i++) {
            int code = p.code(answer, i);
            check(code != CODE_AUTH_OK, kind + ": " + node + " sent AUTH_OK to a stranger without the secret");
            check(code != CODE_AUTH_RESPONSE, kind + ": " + node + " answered a stranger's challenge before the"
                    + " stranger proved the secret (an answer to relay)");
            check(code == CODE_HELLO || code == CODE_REFUSE,
                    kind + ": " + node + " sent a frame of type " + code + " during a handshake");
            if (code == CODE_HELLO) {
                ByteBuf b = Unpooled.wrappedBuffer(p.frame(answer, i));
                PeerFrame h = new PeerFrame().wrap(b);
                check(h.nodeId() == nodeId && h.resourceName().equals("r0")
                        && h.authAlgorithm() == PeerFrame.AUTH_HMAC_SHA256, kind + ": " + node + "'s HELLO " + h);
            }
        }
        return p;
    }

    /**
     * Reads until alpha closes, or nothing came for {@code idleMs}, or (if given) {@code until} says
     * the answer is complete.
     */
    private static byte[] readUntilEndOrIdle(Socket s, long idleMs, java.util.function.Predicate<byte[]> until)
            throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        s.setSoTimeout((int) idleMs);
        InputStream in = s.getInputStream();
        byte[] buf = new byte[8192];
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        try {
            int n;
            while (System.nanoTime() < deadline && (n = in.read(buf)) >= 0) {
                out.write(buf, 0, n);
                if (until != null && until.test(out.toByteArray())) {
                    break;
                }
            }
        } catch (SocketTimeoutException | java.net.SocketException endOrReset) {
            // idle, or alpha reset the connection
        }
        return out.toByteArray();
    }

    /** Reads until the frames so far include one of type {@code code} (or the end). */
    private static java.util.function.Predicate<byte[]> hasFrame(int code) {
        return bytes -> {
            Parsed p = parse(bytes, PeerFrameDecoder.DEFAULT_MAX_PAYLOAD_BYTES);
            for (int i = 0; i < p.frames().size(); i++) {
                if (p.code(bytes, i) == code) {
                    return true;
                }
            }
            return false;
        };
    }

    private static RefuseReason refusal(byte[] answer, Parsed p) {
        for (int i = 0; i < p.frames().size(); i++) {
            if (p.code(answer, i) == CODE_REFUSE) {
                return new PeerFrame().wrap(Unpooled.wrappedBuffer(p.frame(answer, i))).refuseReason();
            }
        }
        return null;
    }

    private static byte[] challengeOf(byte[] answer, Parsed p) {
        for (int i = 0; i < p.frames().size(); i++) {
            if (p.code(answer, i) == CODE_HELLO) {
                int at = p.frames().get(i)[0] + PeerFrame.HELLO_CHALLENGE_OFFSET;
                return Arrays.copyOfRange(answer, at, at + PeerFrame.CHALLENGE_BYTES);
            }
        }
        return null;
    }

    private static byte[] answerOf(byte[] answer, Parsed p) {
        for (int i = 0; i < p.frames().size(); i++) {
            if (p.code(answer, i) == CODE_AUTH_RESPONSE) {
                int at = p.frames().get(i)[0] + PeerFrame.AUTH_RESPONSE_HMAC_OFFSET;
                return Arrays.copyOfRange(answer, at, at + PeerFrame.HMAC_BYTES);
            }
        }
        return null;
    }

    /**
     * Claims to be beta and answers alpha's challenge without the secret: a wrong key, the right key
     * bound to the wrong node id (alpha's own), random bytes, or no answer but AUTH_OK. alpha must
     * refuse with AUTH_FAILED (or time out the last), and never send AUTH_OK.
     */
    private static void wrongSecret(Random rnd, InetSocketAddress target, int alphaId, int betaId) throws Exception {
        int variant = rnd.nextInt(4);
        try (Socket s = connect(target)) {
            long helloSent = System.nanoTime();
            s.getOutputStream().write(helloAsBeta(rnd, betaId));
            byte[] first = readUntilEndOrIdle(s, 2000, hasFrame(CODE_HELLO));
            Parsed p = checkAnswer(first, alphaId, LiveKind.WRONG_SECRET);
            byte[] challenge = challengeOf(first, p);
            check(challenge != null, "WRONG_SECRET: alpha sent no HELLO in answer to a valid one from beta");
            PeerFrameEncoder enc = new PeerFrameEncoder();
            byte[] hmac = switch (variant) {
                case 0 -> hmac("not-" + SECRET, challenge, betaId);
                case 1 -> hmac(SECRET, challenge, alphaId); // bound to the wrong node
                case 2 -> random(rnd, PeerFrame.HMAC_BYTES);
                default -> null;
            };
            byte[] out = hmac == null ? bytes(enc.authOk(GEN))
                    : concat(bytes(enc.authResponse(GEN, hmac)), bytes(enc.authOk(GEN)));
            s.getOutputStream().write(out);
            boolean late = answeredLate(helloSent);
            byte[] rest = readUntilEndOrIdle(s, 2 * LIVE_TIMEOUT_MS, hasFrame(CODE_REFUSE));
            byte[] all = concat(first, rest);
            Parsed q = checkAnswer(all, alphaId, LiveKind.WRONG_SECRET);
            RefuseReason why = refusal(all, q);
            RefuseReason expected = hmac == null ? RefuseReason.TIMEOUT : RefuseReason.AUTH_FAILED;
            check(why == expected || late && why == RefuseReason.TIMEOUT, "WRONG_SECRET variant " + variant
                    + ": alpha refused with " + why + ", expected " + expected);
        }
    }

    /**
     * The relay: claim to be alpha at beta and beta at alpha, present beta's challenge to alpha, and
     * pass whatever alpha answers on to beta (a guess if it answers nothing, as it must not). beta
     * must refuse with AUTH_FAILED, and neither node may answer or accept.
     */
    private static void relayedChallenge(Random rnd, InetSocketAddress alpha, InetSocketAddress beta, int alphaId,
                                         int betaId) throws Exception {
        PeerFrameEncoder enc = new PeerFrameEncoder();
        try (Socket toBeta = connect(beta); Socket toAlpha = connect(alpha)) {
            long helloSent = System.nanoTime();
            toBeta.getOutputStream().write(bytes(enc.hello(GEN, PeerFrame.PROTOCOL_VERSION_MIN,
                    PeerFrame.PROTOCOL_VERSION_MAX, alphaId, SIZE, ReplicationProtocol.C, PeerFrame.AUTH_HMAC_SHA256,
                    random(rnd, PeerFrame.CHALLENGE_BYTES), "r0")));
            byte[] fromBeta = readUntilEndOrIdle(toBeta, 2000, hasFrame(CODE_HELLO));
            byte[] challenge = challengeOf(fromBeta, checkAnswer(fromBeta, betaId, LiveKind.RELAYED_CHALLENGE));
            check(challenge != null, "RELAYED_CHALLENGE: no HELLO from beta");
            toAlpha.getOutputStream().write(helloAsBeta(rnd, betaId, challenge));
            byte[] fromAlpha = readUntilEndOrIdle(toAlpha, 100, hasFrame(CODE_AUTH_RESPONSE));
            byte[] answer = answerOf(fromAlpha, checkAnswer(fromAlpha, alphaId, LiveKind.RELAYED_CHALLENGE));
            toBeta.getOutputStream().write(concat(bytes(enc.authResponse(GEN,
                    answer != null ? answer : random(rnd, PeerFrame.HMAC_BYTES))), bytes(enc.authOk(GEN))));
            boolean late = answeredLate(helloSent);
            byte[] rest = readUntilEndOrIdle(toBeta, 2 * LIVE_TIMEOUT_MS, hasFrame(CODE_REFUSE));
            byte[] all = concat(fromBeta, rest);
            RefuseReason why = refusal(all, checkAnswer(all, betaId, LiveKind.RELAYED_CHALLENGE));
            check(why == RefuseReason.AUTH_FAILED || late && why == RefuseReason.TIMEOUT,
                    "RELAYED_CHALLENGE: beta refused with " + why);
        }
    }

    /**
     * Whether an answer sent now, on a loaded machine, may reach alpha after its handshake timeout:
     * then a TIMEOUT refusal is as good as AUTH_FAILED (what matters is that no AUTH_OK comes).
     */
    private static boolean answeredLate(long helloSentNanos) {
        return System.nanoTime() - helloSentNanos > TimeUnit.MILLISECONDS.toNanos(LIVE_TIMEOUT_MS / 4);
    }

    /** A valid or mutated stream sent a few bytes at a time with pauses, then closed or half-closed. */
    private static void dribble(Random rnd, InetSocketAddress target, int alphaId, int betaId) throws Exception {
        byte[] stream = concat(helloAsBeta(rnd, betaId), validFrame(rnd, TYPES[rnd.nextInt(TYPES.length)]));
        if (rnd.nextBoolean()) {
            stream = mutate(rnd, stream, 1);
        }
        stream = prefix(rnd, stream);
        byte[] answer;
        try (Socket s = connect(target)) {
            int at = 0;
            long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(150);
            try {
                while (at < stream.length && System.nanoTime() < until) {
                    int n = Math.min(stream.length - at, 1 + rnd.nextInt(24));
                    s.getOutputStream().write(stream, at, n);
                    s.getOutputStream().flush();
                    at += n;
                    Thread.sleep(rnd.nextInt(15));
                }
                if (rnd.nextBoolean()) {
                    s.shutdownOutput(); // half-open: alpha sees the end of a stream cut inside a frame
                }
            } catch (IOException closedByAlpha) {
                // alpha may have closed already
            }
            answer = readUntilEndOrIdle(s, 30, null);
        }
        checkAnswer(answer, alphaId, LiveKind.DRIBBLE);
    }

    /** A connection that sends part of a stream and then nothing, held open through the whole fuzz. */
    private static final class Holdout {
        final String what;
        final Socket socket;
        final long openedNanos = System.nanoTime();

        Holdout(String what, Socket socket) {
            this.what = what;
            this.socket = socket;
        }

        /** alpha must have closed it (its timeouts are 1 s): the read ends, it does not time out. */
        void assertClosedByAlpha() throws IOException {
            try (Socket s = socket) {
                long waitedMs = (System.nanoTime() - openedNanos) / 1_000_000;
                s.setSoTimeout(3000);
                InputStream in = s.getInputStream();
                byte[] buf = new byte[4096];
                try {
                    while (in.read(buf) >= 0) {
                        // alpha's HELLO and REFUSE
                    }
                } catch (SocketTimeoutException e) {
                    throw new AssertionError("alpha still holds open, " + (waitedMs + 3000) + " ms later, a"
                            + " connection that sent " + what + " and then nothing (the handshake timeout is "
                            + LIVE_TIMEOUT_MS + " ms)");
                } catch (java.net.SocketException reset) {
                    // closed by alpha with a reset
                }
            }
        }
    }

    /** Stalled connections of every kind: silent, cut in a header, in a body, after a HELLO. */
    private static List<Holdout> openHoldouts(Random rnd, InetSocketAddress target, int betaId) throws IOException {
        byte[] hello = helloAsBeta(rnd, betaId);
        byte[] auth = validFrame(rnd, PeerFrameType.AUTH_RESPONSE);
        byte[] data = validFrame(rnd, PeerFrameType.DATA);
        List<Object[]> plans = List.of(
                new Object[]{"no byte at all", new byte[0]},
                new Object[]{"1 byte of a HELLO", Arrays.copyOf(hello, 1)},
                new Object[]{"15 bytes of a HELLO", Arrays.copyOf(hello, 15)},
                new Object[]{"a HELLO's header", Arrays.copyOf(hello, HEADER)},
                new Object[]{"all of a HELLO but its last byte", Arrays.copyOf(hello, hello.length - 1)},
                new Object[]{"a DATA header announcing " + (data.length - 48) + " bytes", Arrays.copyOf(data, 48)},
                new Object[]{"a whole HELLO as beta", hello},
                new Object[]{"a HELLO and half an AUTH_RESPONSE", concat(hello, Arrays.copyOf(auth, 20))});
        List<Holdout> out = new ArrayList<>();
        for (Object[] p : plans) {
            Socket s = connect(target);
            s.getOutputStream().write((byte[]) p[1]);
            s.getOutputStream().flush();
            out.add(new Holdout((String) p[0], s));
        }
        return out;
    }

    private void createMd(String node, int id, int peer) throws IOException {
        EngineFixture.createMd(dir, node, id, List.of(peer), SIZE);
    }

    private static void await(String what, BooleanSupplier cond) throws InterruptedException {
        EngineFixture.await(what, cond, 20);
    }
}
