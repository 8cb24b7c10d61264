package io.replstor.nbd.server;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import static org.junit.jupiter.api.Assertions.assertThrows;

/** The leak check other tests rely on must be able to fail. */
@Timeout(30)
class LeakWatcherTest {
    @Test
    void reportsABufferThatWasNeverReleased() {
        LeakWatcher watcher = new LeakWatcher();
        leak();
        assertThrows(AssertionError.class, watcher::assertNoLeaks);
    }

    private static void leak() {
        ByteBuf b = PooledByteBufAllocator.DEFAULT.directBuffer(128);
        b.writeLong(42); // dropped without release()
    }
}
