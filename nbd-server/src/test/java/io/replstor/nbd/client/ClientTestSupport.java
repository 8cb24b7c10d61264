package io.replstor.nbd.client;

import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.fail;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/** Helpers shared by the client tests. */
final class ClientTestSupport {
    static final long WAIT_SECONDS = 20;

    private ClientTestSupport() {
    }

    /** Deterministic bytes that differ per {@code seed} and per position. */
    static byte[] pattern(int seed, int length) {
        byte[] bytes = new byte[length];
        int x = seed * 0x9E3779B1 + 1;
        for (int i = 0; i < length; i++) {
            x ^= x << 13;
            x ^= x >>> 17;
            x ^= x << 5;
            bytes[i] = (byte) x;
        }
        return bytes;
    }

    static ByteBuf buffer(byte[] bytes) {
        return Unpooled.wrappedBuffer(bytes);
    }

    static <T> T await(CompletableFuture<T> future) throws Exception {
        try {
            return future.get(WAIT_SECONDS, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof Exception cause) {
                throw cause;
            }
            throw e;
        } catch (TimeoutException e) {
            return fail("no answer within " + WAIT_SECONDS + " s");
        }
    }

    /** Reads and copies out, releasing the client's buffer. */
    static byte[] readBytes(NbdClient client, long offset, int length) throws Exception {
        ByteBuf data = await(client.read(offset, length, 0));
        try {
            return ByteBufUtil.getBytes(data);
        } finally {
            data.release();
        }
    }

    /** The NbdException a failed future holds. */
    static NbdException failure(CompletableFuture<?> future) throws InterruptedException, TimeoutException {
        try {
            Object value = future.get(WAIT_SECONDS, TimeUnit.SECONDS);
            if (value instanceof ByteBuf buf) {
                buf.release();
            }
            return fail("expected a failure, got " + value);
        } catch (ExecutionException e) {
            return assertInstanceOf(NbdException.class, e.getCause());
        }
    }
}
