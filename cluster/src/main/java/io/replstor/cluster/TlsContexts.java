package io.replstor.cluster;

import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;

import java.nio.file.Files;
import java.nio.file.Path;

/** Builds the server's TLS context from PEM files, with errors that name the file. */
final class TlsContexts {
    private TlsContexts() {
    }

    static SslContext server(Path cert, Path key, Path ca, boolean verifyClient) throws ConfigException {
        if (cert == null || key == null) {
            throw new ConfigException("TLS needs both a certificate (--tls-cert / tls-cert) and a key (--tls-key / tls-key)");
        }
        for (Path p : new Path[] {cert, key, ca}) {
            if (p != null && !Files.isReadable(p)) {
                throw new ConfigException("TLS file " + p + " does not exist or is not readable");
            }
        }
        if (verifyClient && ca == null) {
            throw new ConfigException("verifying client certificates needs a CA file (--tls-ca / tls-ca)");
        }
        try {
            SslContextBuilder b = SslContextBuilder.forServer(cert.toFile(), key.toFile()).sslProvider(SslProvider.JDK);
            if (ca != null) {
                b.trustManager(ca.toFile());
            }
            b.clientAuth(verifyClient ? ClientAuth.REQUIRE : ClientAuth.NONE);
            return b.build();
        } catch (Exception e) {
            throw new ConfigException("cannot load TLS certificate " + cert + " / key " + key
                    + (ca != null ? " / CA " + ca : "") + ": " + e.getMessage()
                    + " (the key must be an unencrypted PKCS#8 PEM, e.g. from 'openssl genpkey')");
        }
    }
}
