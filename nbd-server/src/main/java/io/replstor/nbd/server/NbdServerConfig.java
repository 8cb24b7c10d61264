package io.replstor.nbd.server;

import io.netty.handler.ssl.SslContext;
import io.replstor.nbd.Nbd;

import java.net.InetSocketAddress;
import java.util.List;
import java.util.Objects;

/**
 * What an {@link NbdServer} serves and how.
 *
 * @param maxPayloadBytes the largest READ/WRITE accepted and the maximum payload advertised in
 *                        INFO_BLOCK_SIZE. Larger WRITE payloads up to {@link #DISCARD_LIMIT_BYTES}
 *                        past it are read, discarded and answered EINVAL; beyond that the connection
 *                        is closed.
 * @param maxInFlight     requests per connection being served at once; reading from the socket pauses
 *                        at this number (back-pressure).
 */
public record NbdServerConfig(InetSocketAddress listen, List<NbdExport> exports, TlsPolicy tlsPolicy,
                              SslContext sslContext, int ioThreads, int maxPayloadBytes, int maxInFlight,
                              int maxConnections, int handshakeTimeoutSeconds) {

    /** How much of an oversized write payload is read and discarded before giving up on the stream. */
    public static final int DISCARD_LIMIT_BYTES = 32 << 20;

    public NbdServerConfig {
        Objects.requireNonNull(listen, "listen");
        exports = List.copyOf(exports);
        if (tlsPolicy != TlsPolicy.OFF && sslContext == null) {
            throw new IllegalArgumentException("tls " + tlsPolicy.name().toLowerCase() + " needs a certificate and key");
        }
        if (maxPayloadBytes < 4096 || maxPayloadBytes > 256 << 20 || Integer.bitCount(maxPayloadBytes) != 1) {
            throw new IllegalArgumentException("max payload must be a power of two between 4 KiB and 256 MiB");
        }
        if (ioThreads < 1 || maxInFlight < 1 || maxConnections < 1) {
            throw new IllegalArgumentException("io threads, max in-flight and max connections must be positive");
        }
        long names = exports.stream().map(NbdExport::name).distinct().count();
        if (names != exports.size()) {
            throw new IllegalArgumentException("export names must be unique");
        }
    }

    public static NbdServerConfig of(InetSocketAddress listen, List<NbdExport> exports) {
        return new NbdServerConfig(listen, exports, TlsPolicy.OFF, null, defaultIoThreads(), Nbd.MAX_PAYLOAD_BYTES,
                256, 1024, 60);
    }

    public NbdServerConfig withTls(TlsPolicy policy, SslContext context) {
        return new NbdServerConfig(listen, exports, policy, context, ioThreads, maxPayloadBytes, maxInFlight,
                maxConnections, handshakeTimeoutSeconds);
    }

    public NbdServerConfig withIoThreads(int threads) {
        return new NbdServerConfig(listen, exports, tlsPolicy, sslContext, threads, maxPayloadBytes, maxInFlight,
                maxConnections, handshakeTimeoutSeconds);
    }

    public NbdServerConfig withMaxPayload(int bytes) {
        return new NbdServerConfig(listen, exports, tlsPolicy, sslContext, ioThreads, bytes, maxInFlight,
                maxConnections, handshakeTimeoutSeconds);
    }

    public NbdServerConfig withHandshakeTimeout(int seconds) {
        return new NbdServerConfig(listen, exports, tlsPolicy, sslContext, ioThreads, maxPayloadBytes, maxInFlight,
                maxConnections, seconds);
    }

    /** Disk-bound work needs more threads than cores; 8 keeps a disk queue busy without thrashing 2 cores. */
    public static int defaultIoThreads() {
        return Math.max(8, Runtime.getRuntime().availableProcessors() * 2);
    }
}
