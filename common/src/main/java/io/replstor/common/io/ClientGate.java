package io.replstor.common.io;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;

/**
 * Optional side of a {@link BlockDevice}: the device decides whether a front-end client may start
 * using it, and learns when one stops. A replicated volume uses it to promote on the first client
 * (auto-promote), to demote after the last, and to refuse clients on a node that cannot serve.
 *
 * <p>Front ends call {@link #admitAsync} on a network event loop, which must never block. Its
 * default runs {@link #admit} right there, which suits a gate that answers from memory; a gate that
 * has to wait for anything (a metadata commit, a cluster store) overrides {@link #admitAsync}.
 */
public interface ClientGate {

    /**
     * A client wants to start I/O. Synchronous: see {@link #admitAsync} for where it runs.
     *
     * @param client names the client in messages (its address)
     * @return null to admit; otherwise the reason for the refusal, sent to the client (say why and
     *         where the device can be used instead)
     */
    String admit(String client);

    /**
     * A client wants to start I/O; the answer may come later. Called on a network event loop: return
     * at once and complete the stage from any thread.
     *
     * <ul>
     *   <li>completes with null: the client is admitted, and {@link #release} will be called exactly
     *       once later, even if the client has gone by the time the stage completes;</li>
     *   <li>completes with a string: refused for that reason, sent to the client;</li>
     *   <li>completes exceptionally: refused, with the exception's message as the reason.</li>
     * </ul>
     *
     * The default completes at once with {@link #admit}'s answer (an exception it throws becomes an
     * exceptional completion).
     *
     * @param client names the client in messages (its address)
     */
    default CompletionStage<String> admitAsync(String client) {
        try {
            return CompletableFuture.completedFuture(admit(client));
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
    }

    /**
     * A client admitted by {@link #admit} or {@link #admitAsync} has gone; called exactly once per
     * admission, usually on a network thread. When an admission completes after the server's event
     * loops have stopped, it is called on the thread that completed the stage.
     */
    void release(String client);
}
