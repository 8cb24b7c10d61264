package io.replstor.nbd.server;

import io.netty.util.concurrent.FastThreadLocalThread;
import org.agrona.concurrent.ManyToManyConcurrentArrayQueue;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * The threads that do blocking disk I/O, so event loops never block.
 *
 * <p>Hand-off allocates nothing: tasks go through a bounded array queue, and parked workers wait in
 * a second array queue (each at most once, guarded by its {@code parked} flag).
 *
 * <p>Wake-ups follow the "searching worker" rule: a submitter wakes a parked worker only when no
 * worker is searching the queue, and a searching worker that takes a task wakes the next one if
 * tasks remain and it was the last searcher. Short tasks (tmpfs, page cache) thus stay on one or
 * two threads instead of waking every worker per burst, while slow tasks (a disk, fdatasync) fan
 * out to as many workers as there are tasks waiting. No task is stranded: the submitter publishes
 * the task and then reads {@code searching}; a worker lowers {@code searching} and then looks at
 * the queue again; with both steps sequentially consistent, one of them sees the other.
 *
 * <p>Workers are {@link FastThreadLocalThread}s so Netty's pooled allocator gives them thread caches.
 */
public final class IoWorkers implements Executor, AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(IoWorkers.class);

    private final ManyToManyConcurrentArrayQueue<Runnable> tasks;
    private final ManyToManyConcurrentArrayQueue<Worker> idle;
    private final AtomicInteger searching = new AtomicInteger();
    private final Worker[] workers;
    private volatile boolean running = true;

    public IoWorkers(String name, int threads, int queueCapacity) {
        this.tasks = new ManyToManyConcurrentArrayQueue<>(queueCapacity);
        this.idle = new ManyToManyConcurrentArrayQueue<>(Math.max(2, threads));
        this.workers = new Worker[threads];
        for (int i = 0; i < threads; i++) {
            workers[i] = new Worker(name + "-" + i);
            searching.incrementAndGet(); // a starting worker searches before it parks
            workers[i].start();
        }
    }

    /** @throws RejectedExecutionException when the queue is full or the pool is closed */
    @Override
    public void execute(Runnable task) {
        if (!running || !tasks.offer(task)) {
            throw new RejectedExecutionException(running ? "I/O queue full" : "I/O workers stopped");
        }
        if (searching.get() == 0) {
            wakeOne();
        }
    }

    private void wakeOne() {
        Worker w = idle.poll();
        if (w != null) {
            w.parked.set(false);
            LockSupport.unpark(w);
        }
    }

    public int queued() {
        return tasks.size();
    }

    @Override
    public void close() {
        running = false;
        for (Worker w : workers) {
            LockSupport.unpark(w);
        }
        for (Worker w : workers) {
            try {
                w.join(5_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    private final class Worker extends FastThreadLocalThread {
        final AtomicBoolean parked = new AtomicBoolean();

        Worker(String name) {
            super(name);
            setDaemon(true);
        }

        @Override
        public void run() {
            // invariant: this worker counts in 'searching' at the top of the loop
            while (running || !tasks.isEmpty()) {
                Runnable task = tasks.poll();
                if (task == null) {
                    if (!parked.get() && parked.compareAndSet(false, true) && !idle.offer(this)) {
                        parked.set(false); // cannot happen: one slot per worker
                    }
                    searching.decrementAndGet();
                    task = tasks.poll();
                    if (task == null) {
                        if (running) {
                            LockSupport.park(this);
                        }
                        searching.incrementAndGet();
                        continue;
                    }
                    if (!tasks.isEmpty() && searching.get() == 0) {
                        wakeOne();
                    }
                } else if (searching.decrementAndGet() == 0 && !tasks.isEmpty()) {
                    wakeOne();
                }
                runTask(task);
                searching.incrementAndGet();
            }
            searching.decrementAndGet();
        }

        private void runTask(Runnable task) {
            try {
                task.run();
            } catch (Throwable t) {
                // tasks report their own failures to their connection; a bug must not kill the worker
                LOG.error("I/O task failed unexpectedly on {}", getName(), t);
            }
        }
    }
}
