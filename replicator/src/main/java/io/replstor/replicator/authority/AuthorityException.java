package io.replstor.replicator.authority;

/** A role change or in-sync change the authority did not commit, and why. */
public final class AuthorityException extends Exception {
    private static final long serialVersionUID = 1L;

    /** Why nothing was committed. */
    public enum Code {
        /** The rules refuse it (another node is Primary, the candidate is not in sync, ...). */
        REFUSED,
        /** The request named a term that is no longer current: the requester was deposed. */
        STALE_TERM,
        /** No majority could be reached in time: nothing was decided, it may be retried. */
        NO_QUORUM,
        /** The authority is shutting down or failed. */
        UNAVAILABLE
    }

    private final Code code;

    public AuthorityException(Code code, String message) {
        super(message);
        this.code = code;
    }

    public AuthorityException(Code code, String message, Throwable cause) {
        super(message, cause);
        this.code = code;
    }

    public Code code() {
        return code;
    }

    /** Whether asking again later may succeed (no quorum now). */
    public boolean retryable() {
        return code == Code.NO_QUORUM;
    }
}
