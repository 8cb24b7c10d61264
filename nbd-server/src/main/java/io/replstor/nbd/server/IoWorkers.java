package io.replstor.nbd.server;

import io.netty.util.concurrent.FastThreadLocalThread;
import org.agrona.concurrent.ManyToManyConcurrentArrayQueue;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.LockSupport;

/**
 * The threads that do blocking disk I/O, so event loops never block.
 *
 * <p>Hand-off allocates nothing: tasks go through a bounded array queue, and idle workers wait in a
 * second array queue of their own (each at most once, guarded by its {@code parked} flag). A
 * submitter wakes one idle worker. A worker offers itself as idle and then checks the task queue
 * once more before it parks, so a task submitted in between is never stranded: either the recheck
 * sees it, or the submitter finds the worker in the idle queue and its unpark makes the park return.
 *
 * <p>Workers are {@link FastThreadLocalThread}s so Netty's pooled allocator gives them thread caches.
 */
public final class IoWorkers implements java.util.concurrent.Executor, AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(IoWorkers.class);
    private final ManyToManyConcurrentArrayQueue<Runnable> tasks;
    private final ManyToManyConcurrentArrayQueue<Worker> idle;
    private final Worker[] workers;
    private volatile boolean running = true;

    public IoWorkers(String name, int threads, int queueCapacity) {
        this.tasks = new ManyToManyConcurrentArrayQueue<>(queueCapacity);
        this.idle = new ManyToManyConcurrentArrayQueue<>(Math.max(2, threads));
        this.workers = new Worker[threads];
        for (int i = 0; i < threads; i++) {
            workers[i] = new Worker(name + "-" + i);
            workers[i].start();
        }
    }

    /** @throws RejectedExecutionException when the queue is full or the pool is closed */
    @Override
    public void execute(Runnable task) {
        if (!running || !tasks.offer(task)) {
            throw new RejectedExecutionException(running ? "I/O queue full" : "I/O workers stopped");
        }
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
            while (running || !tasks.isEmpty()) {
                Runnable task = tasks.poll();
                if (task == null) {
                    if (!parked.get() && parked.compareAndSet(false, true) && !idle.offer(this)) {
                        parked.set(false); // cannot happen: one slot per worker
                    }
                    task = tasks.poll();
                    if (task == null) {
                        if (running) {
                            LockSupport.park(this);
                        }
                        continue;
                    }
                }
                try {
                    task.run();
                } catch (Throwable t) {
                    // tasks report their own failures to their connection; a bug must not kill the worker
                    LOG.error("I/O task failed unexpectedly on {}", getName(), t);
                }
            }
        }
    }
}
