package io.replstor.replicator.engine;

/**
 * An administrative request the current state does not allow (409 in the admin API), or that names
 * something unknown. The message names the node, the resource and, where it applies, the peer.
 */
public final class EngineException extends Exception {
    /** Why: a short machine-readable kind for the admin API's {@code code}. */
    public enum Code { STATE, IN_USE, NOT_FOUND, BAD_REQUEST, IO }

    private final Code code;

    public EngineException(Code code, String message) {
        super(message);
        this.code = code;
    }

    public EngineException(Code code, String message, Throwable cause) {
        super(message, cause);
        this.code = code;
    }

    public Code code() {
        return code;
    }
}
