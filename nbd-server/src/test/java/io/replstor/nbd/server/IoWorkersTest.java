package io.replstor.nbd.server;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(60)
class IoWorkersTest {
    @Test
    void everyTaskRunsExactlyOnceUnderConcurrentSubmitters() throws Exception {
        try (IoWorkers w = new IoWorkers("t", 4, 1 << 16)) {
            int submitters = 4;
            int perSubmitter = 50_000;
            AtomicInteger ran = new AtomicInteger();
            CountDownLatch done = new CountDownLatch(submitters * perSubmitter);
            Thread[] threads = new Thread[submitters];
            for (int s = 0; s < submitters; s++) {
                threads[s] = new Thread(() -> {
                    for (int i = 0; i < perSubmitter; i++) {
                        while (true) {
                            try {
                                w.execute(() -> {
                                    ran.incrementAndGet();
                                    done.countDown();
                                });
                                break;
                            } catch (RejectedExecutionException full) {
                                Thread.onSpinWait();
                            }
                        }
                        if (i % 1000 == 0) {
                            LockSupportSleep.sleepMicros(50); // let workers park now and then
                        }
                    }
                });
                threads[s].start();
            }
            assertTrue(done.await(30, TimeUnit.SECONDS), "tasks stranded: " + done.getCount() + " never ran");
            assertEquals(submitters * perSubmitter, ran.get());
        }
    }

    @Test
    void slowTasksFanOutToSeveralWorkers() throws Exception {
        try (IoWorkers w = new IoWorkers("t", 4, 1024)) {
            CountDownLatch started = new CountDownLatch(4);
            CountDownLatch release = new CountDownLatch(1);
            ConcurrentHashMap<String, Boolean> names = new ConcurrentHashMap<>();
            for (int i = 0; i < 4; i++) {
                w.execute(() -> {
                    names.put(Thread.currentThread().getName(), true);
                    started.countDown();
                    try {
                        release.await();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                });
            }
            // four blocking tasks can only all start if four workers were woken
            assertTrue(started.await(10, TimeUnit.SECONDS), "only " + (4 - started.getCount()) + " workers ran");
            assertEquals(4, names.size());
            release.countDown();
        }
    }

    @Test
    void closedPoolRejects() {
        IoWorkers w = new IoWorkers("t", 1, 16);
        w.close();
        assertThrows(RejectedExecutionException.class, () -> w.execute(() -> { }));
    }

    static final class LockSupportSleep {
        static void sleepMicros(long us) {
            java.util.concurrent.locks.LockSupport.parkNanos(us * 1000);
        }
    }
}
