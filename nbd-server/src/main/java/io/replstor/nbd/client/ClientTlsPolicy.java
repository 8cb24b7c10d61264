package io.replstor.nbd.client;

/** When the client sends {@code NBD_OPT_STARTTLS}. NBD has no TLS advertisement: "offered" means the server ACKs it. */
public enum ClientTlsPolicy {
    /** Never send STARTTLS; a server that requires TLS then fails the handshake with ERR_TLS_REQD. */
    NEVER,
    /** Send STARTTLS first; continue in plaintext if the server answers with an error (ERR_UNSUP, ERR_POLICY). */
    IF_OFFERED,
    /** Send STARTTLS first; fail the handshake unless the server ACKs it and the TLS handshake succeeds. */
    REQUIRED
}
