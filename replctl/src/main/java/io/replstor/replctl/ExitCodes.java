package io.replstor.replctl;

/** replctl's exit codes, the same for every verb. */
final class ExitCodes {
    /** Success. */
    static final int OK = 0;
    /** The node refused or failed (the message says why); also offline verbs that failed. */
    static final int FAILED = 1;
    /** Bad command line or configuration. */
    static final int USAGE = 2;
    /** The node could not be reached: no socket, connection refused, or no answer in time. */
    static final int UNREACHABLE = 3;

    /** For {@code exitCodeList} of every command's help. */
    static final String[] HELP = {
        "0:success",
        "1:the node refused or failed (the message says why)",
        "2:bad command line or configuration",
        "3:the node could not be reached (no socket, connection refused, no answer)"};

    private ExitCodes() {
    }
}
