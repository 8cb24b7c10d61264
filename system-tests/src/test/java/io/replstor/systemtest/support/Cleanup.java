package io.replstor.systemtest.support;

import java.util.ArrayDeque;
import java.util.Deque;

/**
 * Undo steps for resources outside the JVM (mounts, loop devices, processes), run in reverse order on close even when
 * the test failed. The normal path runs a step with {@link Step#runNow()}; a step that succeeded is not run again, so
 * a loop device detached by the test is never detached a second time after someone else reused its name.
 */
public final class Cleanup implements AutoCloseable {
    /** An undo action; it may throw, and the failure is reported after every other step has run. */
    @FunctionalInterface
    public interface Action {
        void run() throws Exception;
    }

    /** One registered undo step. */
    public static final class Step {
        private final String what;
        private final Action action;
        private boolean done;

        private Step(String what, Action action) {
            this.what = what;
            this.action = action;
        }

        /** Runs the step now, as part of the test; on failure it stays registered and is retried on close. */
        public void runNow() throws Exception {
            if (!done) {
                action.run();
                done = true;
            }
        }
    }

    private final Deque<Step> steps = new ArrayDeque<>();

    public Step add(String what, Action action) {
        Step step = new Step(what, action);
        steps.push(step);
        return step;
    }

    /**
     * Runs the remaining steps. A test stopped by its {@code @Timeout} arrives here with its thread interrupted;
     * the flag is cleared while the steps wait for umount or losetup, then restored.
     */
    @Override
    public void close() {
        boolean interrupted = Thread.interrupted();
        AssertionError report = null;
        while (!steps.isEmpty()) {
            Step step = steps.pop();
            try {
                step.runNow();
            } catch (Exception | AssertionError e) {
                if (report == null) {
                    report = new AssertionError("cleanup failed, clean up by hand (each failure is attached)");
                }
                report.addSuppressed(new AssertionError(step.what + ": " + e.getMessage(), e));
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
        if (report != null) {
            throw report;
        }
    }
}
