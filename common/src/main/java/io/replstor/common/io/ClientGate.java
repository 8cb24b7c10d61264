package io.replstor.common.io;

/**
 * Optional side of a {@link BlockDevice}: the device decides whether a front-end client may start
 * using it, and learns when one stops. A replicated volume uses it to promote on the first client
 * (auto-promote), to demote after the last, and to refuse clients on a node that cannot serve.
 *
 * <p>Calls come from a network thread and may block briefly (a metadata commit).
 */
public interface ClientGate {

    /**
     * A client wants to start I/O.
     *
     * @param client names the client in messages (its address)
     * @return null to admit; otherwise the reason for the refusal, sent to the client (say why and
     *         where the device can be used instead)
     */
    String admit(String client);

    /** A client admitted by {@link #admit} has gone; called exactly once per admission. */
    void release(String client);
}
