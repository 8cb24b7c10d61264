package io.replstor.systemtest.support;

import java.nio.file.Path;
import java.util.Locale;

/**
 * The server's TLS settings: {@code --tls MODE --tls-cert CERT --tls-key KEY [--tls-ca CA] [--tls-verify-client]}.
 *
 * @param ca null unless client certificates are verified against it
 */
public record TlsSpec(Mode mode, Path cert, Path key, Path ca, boolean verifyClient) {
    /** {@code --tls} values: off (no STARTTLS), allow (plain or TLS), require (TLS only). */
    public enum Mode {
        OFF, ALLOW, REQUIRE;

        public String cliValue() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    public TlsSpec {
        if (verifyClient && ca == null) {
            throw new IllegalArgumentException("verifying client certificates needs a CA");
        }
    }

    public static TlsSpec require(Path cert, Path key) {
        return new TlsSpec(Mode.REQUIRE, cert, key, null, false);
    }

    public static TlsSpec requireClientCertificates(Path cert, Path key, Path ca) {
        return new TlsSpec(Mode.REQUIRE, cert, key, ca, true);
    }
}
