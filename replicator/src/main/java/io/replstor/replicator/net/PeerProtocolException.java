package io.replstor.replicator.net;

import io.netty.handler.codec.DecoderException;

/**
 * The peer sent bytes that are not a valid frame of the peer protocol (bad magic, unknown type,
 * oversized or misshapen payload, checksum mismatch, a stream cut inside a frame). The connection
 * cannot continue: it goes to ProtocolError and is closed. The message says what was wrong and at
 * which byte of the stream.
 *
 * <p>A {@link DecoderException}, so Netty's {@code ByteToMessageDecoder} passes it on unwrapped.
 */
public final class PeerProtocolException extends DecoderException {
    private static final long serialVersionUID = 1L;

    public PeerProtocolException(String message) {
        super(message);
    }
}
