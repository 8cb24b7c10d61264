package io.replstor.systemtest.support;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

/**
 * A throw-away certificate authority made with {@code openssl}: a CA, a server certificate for 127.0.0.1 and
 * localhost, and a client certificate, all RSA 2048 with PKCS#8 PEM keys ({@code openssl genpkey}).
 */
public final class TestPki {
    private static final Duration OPENSSL_TIMEOUT = Duration.ofSeconds(60);
    private static final String DAYS = "2";

    private final Path dir;

    private TestPki(Path dir) {
        this.dir = dir;
    }

    public static TestPki create(Path dir) throws IOException {
        Files.createDirectories(dir);
        TestPki pki = new TestPki(dir);
        pki.createCa();
        pki.issue("server", "/CN=localhost", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                + "extendedKeyUsage=serverAuth\n");
        pki.issue("client", "/CN=replstor-system-test-client", "extendedKeyUsage=clientAuth\n");
        return pki;
    }

    public Path caCert() {
        return dir.resolve("ca-cert.pem");
    }

    public Path serverCert() {
        return dir.resolve("server-cert.pem");
    }

    public Path serverKey() {
        return dir.resolve("server-key.pem");
    }

    public Path clientCert() {
        return dir.resolve("client-cert.pem");
    }

    public Path clientKey() {
        return dir.resolve("client-key.pem");
    }

    /**
     * A client credentials directory in the layout both qemu's {@code tls-creds-x509} and libnbd's
     * {@code tls-certificates} read: {@code ca-cert.pem} (this CA, to check the server) and, when
     * {@code identity} is not null, {@code client-cert.pem} and {@code client-key.pem} issued by {@code identity}.
     */
    public Path clientDir(Path target, TestPki identity) throws IOException {
        Files.createDirectories(target);
        Files.copy(caCert(), target.resolve("ca-cert.pem"));
        if (identity != null) {
            Files.copy(identity.clientCert(), target.resolve("client-cert.pem"));
            Files.copy(identity.clientKey(), target.resolve("client-key.pem"));
        }
        return target;
    }

    private void createCa() throws IOException {
        generateKey(dir.resolve("ca-key.pem"));
        openssl("req", "-x509", "-new", "-key", path("ca-key.pem"), "-subj", "/CN=replstor system-test CA",
                "-days", DAYS, "-out", path("ca-cert.pem"),
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign");
    }

    private void issue(String role, String subject, String extensions) throws IOException {
        generateKey(dir.resolve(role + "-key.pem"));
        openssl("req", "-new", "-key", path(role + "-key.pem"), "-subj", subject, "-out", path(role + ".csr"));
        Path extFile = dir.resolve(role + ".ext");
        Files.writeString(extFile, "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                + extensions);
        openssl("x509", "-req", "-in", path(role + ".csr"), "-CA", path("ca-cert.pem"), "-CAkey", path("ca-key.pem"),
                "-CAcreateserial", "-days", DAYS, "-extfile", extFile.toString(), "-out", path(role + "-cert.pem"));
    }

    private void generateKey(Path key) {
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key.toString());
    }

    private String path(String name) {
        return dir.resolve(name).toString();
    }

    private static void openssl(String... args) {
        ExternalCommand.of("openssl", args).timeout(OPENSSL_TIMEOUT).runSuccessfully();
    }
}
