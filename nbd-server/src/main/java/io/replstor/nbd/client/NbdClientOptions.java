package io.replstor.nbd.client;

import io.netty.channel.EventLoopGroup;
import io.netty.handler.ssl.SslContext;
import io.replstor.nbd.Nbd;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Objects;

/**
 * How {@link NbdClient} connects and what it negotiates. Build with {@link #builder()}.
 *
 * @param host              server address
 * @param port              server TCP port
 * @param exportName        export to open; "" is the server's default export
 * @param tlsPolicy         when to send STARTTLS; anything but NEVER needs a client {@code sslContext}
 * @param sslContext        a client-mode Netty context (trust store, protocols); may be null with
 *                          {@link ClientTlsPolicy#NEVER}
 * @param structuredReplies whether to ask for {@code NBD_OPT_STRUCTURED_REPLY}
 * @param metaContexts      names for {@code NBD_OPT_SET_META_CONTEXT} (e.g. {@code base:allocation}); only sent
 *                          when structured replies were negotiated
 * @param timeout           bound on TCP connect + handshake, and on a graceful {@code close()}
 * @param eventLoopGroup    an epoll or NIO group to share between clients; null gives each client its own
 *                          one-thread group, shut down on close
 */
public record NbdClientOptions(String host, int port, String exportName, ClientTlsPolicy tlsPolicy,
                               SslContext sslContext, boolean structuredReplies, List<String> metaContexts,
                               Duration timeout, EventLoopGroup eventLoopGroup) {
    public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(10);

    public NbdClientOptions {
        Objects.requireNonNull(host, "host");
        Objects.requireNonNull(exportName, "exportName");
        Objects.requireNonNull(tlsPolicy, "tlsPolicy");
        Objects.requireNonNull(timeout, "timeout");
        if (host.isEmpty()) {
            throw new IllegalArgumentException("host is empty");
        }
        if (port < 1 || port > 65535) {
            throw new IllegalArgumentException("port must be 1..65535, got " + port);
        }
        checkString("export name", exportName);
        if (tlsPolicy != ClientTlsPolicy.NEVER && sslContext == null) {
            throw new IllegalArgumentException("TLS policy " + tlsPolicy + " needs an SslContext");
        }
        if (sslContext != null && !sslContext.isClient()) {
            throw new IllegalArgumentException(
                    "the SslContext must be a client context (SslContextBuilder.forClient())");
        }
        metaContexts = List.copyOf(metaContexts);
        for (String context : metaContexts) {
            checkString("meta context", context);
        }
        if (timeout.isNegative() || timeout.isZero()) {
            throw new IllegalArgumentException("timeout must be positive, got " + timeout);
        }
    }

    public static Builder builder() {
        return new Builder();
    }

    /** The same options for another server (used by {@link NbdClient#list} and {@link NbdClient#info}). */
    public NbdClientOptions withAddress(String newHost, int newPort) {
        return new NbdClientOptions(newHost, newPort, exportName, tlsPolicy, sslContext, structuredReplies,
                metaContexts, timeout, eventLoopGroup);
    }

    /** The same options for another export. */
    public NbdClientOptions withExportName(String newExportName) {
        return new NbdClientOptions(host, port, newExportName, tlsPolicy, sslContext, structuredReplies,
                metaContexts, timeout, eventLoopGroup);
    }

    private static void checkString(String what, String value) {
        Objects.requireNonNull(value, what);
        if (value.indexOf('\0') >= 0) {
            throw new IllegalArgumentException(what + " must not contain NUL: '" + value + "'");
        }
        if (value.getBytes(StandardCharsets.UTF_8).length > Nbd.MAX_STRING_BYTES) {
            throw new IllegalArgumentException(what + " is longer than " + Nbd.MAX_STRING_BYTES + " bytes");
        }
    }

    /** Defaults: 127.0.0.1:10809, export "", no TLS, structured replies on, no meta contexts, 10 s timeout. */
    public static final class Builder {
        private String host = "127.0.0.1";
        private int port = Nbd.DEFAULT_PORT;
        private String exportName = "";
        private ClientTlsPolicy tlsPolicy = ClientTlsPolicy.NEVER;
        private SslContext sslContext;
        private boolean structuredReplies = true;
        private List<String> metaContexts = List.of();
        private Duration timeout = DEFAULT_TIMEOUT;
        private EventLoopGroup eventLoopGroup;

        private Builder() {
        }

        public Builder host(String value) {
            host = value;
            return this;
        }

        public Builder port(int value) {
            port = value;
            return this;
        }

        public Builder exportName(String value) {
            exportName = value;
            return this;
        }

        public Builder tls(SslContext context, ClientTlsPolicy policy) {
            sslContext = context;
            tlsPolicy = policy;
            return this;
        }

        public Builder structuredReplies(boolean value) {
            structuredReplies = value;
            return this;
        }

        public Builder metaContexts(List<String> value) {
            metaContexts = value;
            return this;
        }

        public Builder timeout(Duration value) {
            timeout = value;
            return this;
        }

        public Builder eventLoopGroup(EventLoopGroup value) {
            eventLoopGroup = value;
            return this;
        }

        public NbdClientOptions build() {
            return new NbdClientOptions(host, port, exportName, tlsPolicy, sslContext, structuredReplies,
                    metaContexts, timeout, eventLoopGroup);
        }
    }
}
