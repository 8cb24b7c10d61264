package io.replstor.nbd.server;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.channel.embedded.EmbeddedChannel;
import io.replstor.common.io.BlockDevice;
import io.replstor.common.io.FileBackingStore;
import io.replstor.nbd.Nbd;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The NBD request path, from request bytes on the channel to the encoded reply, through the real
 * {@link TransmissionHandler} and {@link Request} on an {@link EmbeddedChannel}, with device work
 * run inline. Run with {@code -prof gc}: {@code gc.alloc.rate.norm} is the bytes allocated per
 * operation, which should be 0 in steady state.
 *
 * <pre>java -cp 'bench/target/bench.jar:bench/target/lib/*' org.openjdk.jmh.Main RequestPathBenchmark -prof gc</pre>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"-Dio.netty.leakDetection.level=disabled"})
public class RequestPathBenchmark {
    private static final int SIZE = 64 << 20;

    /** memory: RAM device (protocol cost only); file: FileBackingStore on /dev/shm (adds syscalls). */
    @Param({"memory", "file"})
    public String device;

    @Param({"false", "true"})
    public boolean structured;

    private EmbeddedChannel channel;
    private BlockDevice dev;
    private Path file;
    private ByteBuf write4k;
    private ByteBuf read4k;
    private ByteBuf flush;
    private long ops;

    @Setup(Level.Trial)
    public void setUp() throws IOException {
        if (device.equals("file")) {
            file = Files.createTempFile(Path.of("/dev/shm"), "replstor-jmh", ".img");
            Files.delete(file);
            dev = FileBackingStore.open("jmh", file, false, SIZE);
        } else {
            dev = new MemoryBlockDevice(SIZE);
        }
        NbdExport export = new NbdExport("jmh", "", dev, List.of());
        Session session = new Session();
        session.structuredReplies = structured;
        channel = new EmbeddedChannel();
        channel.pipeline().addLast(new TransmissionHandler(Runnable::run, () -> false, Nbd.MAX_PAYLOAD_BYTES, 256,
                new ServerStats(), export, session, "jmh"));
        write4k = request(Nbd.CMD_WRITE, 4096, 4096);
        read4k = request(Nbd.CMD_READ, 8192, 0);
        flush = request(Nbd.CMD_FLUSH, 0, 0);
    }

    private static ByteBuf request(int type, long offset, int payload) {
        int length = type == Nbd.CMD_FLUSH ? 0 : 4096;
        ByteBuf b = PooledByteBufAllocator.DEFAULT.directBuffer(Nbd.REQUEST_HEADER_BYTES + payload);
        b.writeInt(Nbd.REQUEST_MAGIC).writeShort(0).writeShort(type).writeLong(7).writeLong(offset).writeInt(length);
        b.writeZero(payload);
        return b;
    }

    @TearDown(Level.Trial)
    public void tearDown() throws IOException {
        channel.finishAndReleaseAll();
        write4k.release();
        read4k.release();
        flush.release();
        dev.close();
        if (file != null) {
            Files.deleteIfExists(file);
        }
    }

    /** Sends one request and returns the reply size, releasing the reply. */
    private int roundTrip(ByteBuf request) {
        channel.pipeline().fireChannelRead(request.retainedDuplicate());
        channel.runPendingTasks();
        ByteBuf reply = channel.readOutbound();
        int n = reply.readableBytes();
        reply.release();
        ops++;
        return n;
    }

    @Benchmark
    public int write4k() {
        return roundTrip(write4k);
    }

    @Benchmark
    public int read4k() {
        return roundTrip(read4k);
    }

    @Benchmark
    public int flush() {
        return roundTrip(flush);
    }
}
