package io.replstor.nbd.client;

/** Fixed-size handshake messages decoded by {@link OptionReplyDecoder}; they carry no buffers. */
final class HandshakeMessages {
    private HandshakeMessages() {
    }

    /** The server greeting after the two magics: its u16 handshake flags. */
    record Greeting(int handshakeFlags) {
    }

    /** The reply to {@code NBD_OPT_EXPORT_NAME}: size u64 and transmission flags u16. */
    record ExportNameReply(long sizeBytes, int transmissionFlags) {
    }
}
