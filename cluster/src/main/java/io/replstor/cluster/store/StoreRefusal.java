package io.replstor.cluster.store;

/**
 * The leader refused a command before appending it (a Primary's lease still runs). Ratis carries it to
 * the client as the cause of a {@code StateMachineException}, rebuilt by class name through the public
 * {@code (String)} constructor, so this class and constructor must stay public.
 */
public final class StoreRefusal extends Exception {
    private static final long serialVersionUID = 1L;

    public StoreRefusal(String message) {
        super(message);
    }
}
