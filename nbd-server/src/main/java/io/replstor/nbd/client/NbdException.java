package io.replstor.nbd.client;

import io.replstor.nbd.Nbd;
import java.io.IOException;

/**
 * Every failure the NBD client reports. {@link #kind()} says what went wrong; for {@link Kind#ERROR_REPLY}
 * {@link #errno()} is the server's error code and {@link #serverMessage()} the text of a structured error chunk;
 * for {@link Kind#OPTION_REFUSED} {@link #option()} and {@link #replyType()} name the option and the error reply.
 * Messages always name the server (host:port) and, where known, the export.
 */
public final class NbdException extends IOException {
    private static final long serialVersionUID = 1L;

    public enum Kind {
        /** The server answered a command with a nonzero error (simple reply or ERROR chunk). */
        ERROR_REPLY,
        /** The server answered an option with an error reply (ERR_UNKNOWN, ERR_TLS_REQD, ...). */
        OPTION_REFUSED,
        /** The server broke the protocol: bad magic, a malformed reply, an unexpected reply type. */
        PROTOCOL_VIOLATION,
        /** TCP connect failed, or the connection closed while the request or handshake was outstanding. */
        CONNECTION_LOST,
        /** TLS was required but refused, or the TLS handshake failed. */
        TLS,
        /** The handshake or close did not finish within the configured timeout. */
        TIMEOUT,
        /** The request was submitted after {@code close()}. */
        CLOSED,
        /** The calling thread was interrupted while it waited. */
        INTERRUPTED
    }

    private final Kind kind;
    private final int errno;
    private final String serverMessage;
    private final int option;
    private final int replyType;

    private NbdException(Kind kind, String message, int errno, String serverMessage, int option, int replyType,
                         Throwable cause) {
        super(message, cause);
        this.kind = kind;
        this.errno = errno;
        this.serverMessage = serverMessage == null ? "" : serverMessage;
        this.option = option;
        this.replyType = replyType;
    }

    public NbdException(Kind kind, String message) {
        this(kind, message, 0, "", 0, 0, null);
    }

    public NbdException(Kind kind, String message, Throwable cause) {
        this(kind, message, 0, "", 0, 0, cause);
    }

    /** A command error reply: {@code what} names the command and range, {@code where} the server and export. */
    static NbdException errorReply(String what, String where, int errno, String serverMessage) {
        String text = what + " failed on " + where + ": " + errnoName(errno) + " (" + errno + ")"
                + (serverMessage == null || serverMessage.isEmpty() ? "" : ": " + serverMessage);
        return new NbdException(Kind.ERROR_REPLY, text, errno, serverMessage, 0, 0, null);
    }

    /** An option error reply. */
    static NbdException optionRefused(String where, int option, int replyType, String serverMessage, String hint) {
        String text = where + " answered " + Nbd.optionName(option) + " with " + replyTypeName(replyType)
                + (serverMessage == null || serverMessage.isEmpty() ? "" : " (\"" + serverMessage + "\")")
                + (hint == null ? "" : ": " + hint);
        return new NbdException(Kind.OPTION_REFUSED, text, 0, serverMessage, option, replyType, null);
    }

    /** The same failure for rethrowing on the waiting thread: its stack, this exception as the cause. */
    NbdException rethrown() {
        return new NbdException(kind, getMessage(), errno, serverMessage, option, replyType, this);
    }

    public Kind kind() {
        return kind;
    }

    /** The server's errno for {@link Kind#ERROR_REPLY}, else 0. */
    public int errno() {
        return errno;
    }

    /** The message of a structured error chunk or option error reply; empty if the server sent none. */
    public String serverMessage() {
        return serverMessage;
    }

    /** The option ({@code Nbd.OPT_*}) for {@link Kind#OPTION_REFUSED}, else 0. */
    public int option() {
        return option;
    }

    /** The error reply type ({@code Nbd.REP_ERR_*}) for {@link Kind#OPTION_REFUSED}, else 0. */
    public int replyType() {
        return replyType;
    }

    /** The protocol's name for an errno value, e.g. "EINVAL"; unknown values as "errno N". */
    public static String errnoName(int errno) {
        return switch (errno) {
            case Nbd.EPERM -> "EPERM";
            case Nbd.EIO -> "EIO";
            case Nbd.ENOMEM -> "ENOMEM";
            case Nbd.EINVAL -> "EINVAL";
            case Nbd.ENOSPC -> "ENOSPC";
            case Nbd.EOVERFLOW -> "EOVERFLOW";
            case Nbd.ENOTSUP -> "ENOTSUP";
            case Nbd.ESHUTDOWN -> "ESHUTDOWN";
            default -> "errno " + errno;
        };
    }

    /** The protocol's name for an option reply type, e.g. "ERR_UNSUP (0x80000001)". */
    public static String replyTypeName(int replyType) {
        String name = switch (replyType) {
            case Nbd.REP_ACK -> "ACK";
            case Nbd.REP_SERVER -> "SERVER";
            case Nbd.REP_INFO -> "INFO";
            case Nbd.REP_META_CONTEXT -> "META_CONTEXT";
            case Nbd.REP_ERR_UNSUP -> "ERR_UNSUP";
            case Nbd.REP_ERR_POLICY -> "ERR_POLICY";
            case Nbd.REP_ERR_INVALID -> "ERR_INVALID";
            case Nbd.REP_ERR_PLATFORM -> "ERR_PLATFORM";
            case Nbd.REP_ERR_TLS_REQD -> "ERR_TLS_REQD";
            case Nbd.REP_ERR_UNKNOWN -> "ERR_UNKNOWN";
            case Nbd.REP_ERR_SHUTDOWN -> "ERR_SHUTDOWN";
            case Nbd.REP_ERR_BLOCK_SIZE_REQD -> "ERR_BLOCK_SIZE_REQD";
            case Nbd.REP_ERR_TOO_BIG -> "ERR_TOO_BIG";
            default -> (replyType & 0x80000000) != 0 ? "unknown error reply" : "unknown reply";
        };
        return name + String.format(" (0x%x)", replyType);
    }
}
