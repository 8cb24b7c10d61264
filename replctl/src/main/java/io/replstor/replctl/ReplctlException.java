package io.replstor.replctl;

/**
 * A failure a verb reports as {@code replctl: MESSAGE} on stderr, with {@link #exitCode()} (see
 * {@link ExitCodes}). Thrown out of {@code call()}; {@link Replctl}'s exception handler prints it.
 */
final class ReplctlException extends Exception {
    private static final long serialVersionUID = 1L;

    private final int exitCode;

    ReplctlException(int exitCode, String message) {
        super(message, null, false, false);
        this.exitCode = exitCode;
    }

    static ReplctlException failed(String message) {
        return new ReplctlException(ExitCodes.FAILED, message);
    }

    static ReplctlException usage(String message) {
        return new ReplctlException(ExitCodes.USAGE, message);
    }

    static ReplctlException unreachable(String message) {
        return new ReplctlException(ExitCodes.UNREACHABLE, message);
    }

    int exitCode() {
        return exitCode;
    }
}
