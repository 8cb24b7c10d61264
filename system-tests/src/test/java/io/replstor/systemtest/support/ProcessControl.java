package io.replstor.systemtest.support;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/** Stops processes the tests started, always through their own PID, never by name. */
public final class ProcessControl {
    private ProcessControl() {
    }

    /**
     * SIGTERM, wait up to {@code grace}, then SIGKILL. Children the process spawned (a launcher script that forked
     * instead of exec'ing) are collected first, because once the parent is gone they can no longer be found.
     *
     * @return the descendants that were still alive when the process was stopped; empty for a well-behaved launcher
     */
    public static List<ProcessHandle> stop(Process process, Duration grace) throws InterruptedException {
        List<ProcessHandle> descendants = process.descendants().toList();
        process.destroy();
        if (!process.waitFor(grace.toMillis(), TimeUnit.MILLISECONDS)) {
            process.destroyForcibly();
            process.waitFor(grace.toMillis(), TimeUnit.MILLISECONDS);
        }
        List<ProcessHandle> leftovers = descendants.stream().filter(ProcessHandle::isAlive).toList();
        for (ProcessHandle child : leftovers) {
            child.destroy();
        }
        for (ProcessHandle child : leftovers) {
            try {
                child.onExit().get(grace.toMillis(), TimeUnit.MILLISECONDS);
            } catch (ExecutionException | TimeoutException e) {
                child.destroyForcibly();
            }
        }
        return leftovers;
    }
}
