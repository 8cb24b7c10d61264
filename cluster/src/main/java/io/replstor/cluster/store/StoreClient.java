package io.replstor.cluster.store;

import org.apache.ratis.client.RaftClient;
import org.apache.ratis.protocol.Message;
import org.apache.ratis.protocol.RaftClientReply;
import org.apache.ratis.protocol.exceptions.AlreadyClosedException;
import org.apache.ratis.protocol.exceptions.LeaderSteppingDownException;
import org.apache.ratis.protocol.exceptions.StateMachineException;
import org.apache.ratis.protocol.exceptions.TransferLeadershipException;
import org.apache.ratis.retry.RetryPolicy;
import org.apache.ratis.util.TimeDuration;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/**
 * A blocking Ratis client bounded in time: each call gives up after the budget. Within it, Ratis' own
 * retries (an attempt that timed out or reached a follower; same call id, so the leader's retry cache
 * answers a duplicate) run until the calling thread's deadline. Ratis' blocking API gives up at once
 * on a connection that closed under the request ({@link AlreadyClosedException}: the leader died, or the
 * gateway could not reach it) and on a leader stepping down: those are retried here, as a new request,
 * within the same deadline. Every store command means the same when applied twice (promoting the
 * Primary, demoting a Secondary, re-adding a member are no-ops), so such a duplicate is harmless.
 *
 * <p>Not the asynchronous API: it logs every failed request at ERROR, and after one request runs out of
 * retries it fails every later request of the client.
 */
final class StoreClient implements AutoCloseable {
    private static final long RETRY_SLEEP_MS = 50;

    private static final TimeDuration RETRY_SLEEP = TimeDuration.valueOf(RETRY_SLEEP_MS, TimeUnit.MILLISECONDS);

    private final RaftClient client;
    private final long budgetNs;
    private final BooleanSupplier closing;
    /** The calling thread's deadline (System.nanoTime), read by the retry policy on the same thread. */
    private final ThreadLocal<Long> deadline = new ThreadLocal<>();

    StoreClient(RaftClient.Builder builder, Duration budget, BooleanSupplier closing) {
        this.budgetNs = budget.toNanos();
        this.closing = closing;
        this.client = builder.setRetryPolicy(this::retryUntilDeadline).build();
    }

    private RetryPolicy.Action retryUntilDeadline(RetryPolicy.Event event) {
        Long d = deadline.get();
        if (closing.getAsBoolean() || d == null || System.nanoTime() - d > 0) {
            return RetryPolicy.NO_RETRY_ACTION;
        }
        return () -> RETRY_SLEEP;
    }

    RaftClientReply write(Message m) throws IOException {
        return call(m, false);
    }

    /** A linearizable read (the server's read option), answered by {@code StateMachine.query}. */
    RaftClientReply read(Message m) throws IOException {
        return call(m, true);
    }

    private RaftClientReply call(Message m, boolean readOnly) throws IOException {
        long until = System.nanoTime() + budgetNs;
        deadline.set(until);
        try {
            while (true) {
                try {
                    return readOnly ? client.io().sendReadOnly(m) : client.io().send(m);
                } catch (StateMachineException e) {
                    throw e;
                } catch (AlreadyClosedException | LeaderSteppingDownException | TransferLeadershipException e) {
                    if (closing.getAsBoolean() || System.nanoTime() - until > 0) {
                        throw e;
                    }
                    pause();
                }
            }
        } finally {
            deadline.remove();
        }
    }

    private static void pause() throws InterruptedIOException {
        try {
            Thread.sleep(RETRY_SLEEP_MS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while retrying a cluster store request");
        }
    }

    @Override
    public void close() {
        try {
            client.close();
        } catch (IOException e) {
            // closing: nothing is waiting for this client any more
        }
    }
}
