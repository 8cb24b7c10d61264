package io.replstor.nbd.client;

import static org.junit.jupiter.api.Assertions.fail;

import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A throwaway CA and a server certificate for 127.0.0.1/localhost, made with the openssl CLI (EC P-256 keys in
 * PKCS#8 from {@code genpkey}), laid out as nbdkit's {@code --tls-certificates=DIR} expects:
 * {@code ca-cert.pem}, {@code server-cert.pem}, {@code server-key.pem}.
 */
final class TestCertificates {
    private TestCertificates() {
    }

    /** Creates {@code dir} with the CA and server files; returns it. */
    static Path create(Path dir, String caName) throws IOException, InterruptedException {
        Files.createDirectories(dir);
        openssl(dir, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ca-key.pem");
        openssl(dir, "req", "-x509", "-new", "-key", "ca-key.pem", "-subj", "/CN=" + caName, "-days", "2",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                "-out", "ca-cert.pem");
        openssl(dir, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "server-key.pem");
        openssl(dir, "req", "-new", "-key", "server-key.pem", "-subj", "/CN=localhost", "-out", "server.csr");
        Files.writeString(dir.resolve("server-ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                + "extendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n", StandardCharsets.UTF_8);
        openssl(dir, "x509", "-req", "-in", "server.csr", "-CA", "ca-cert.pem", "-CAkey", "ca-key.pem",
                "-CAcreateserial", "-days", "2", "-extfile", "server-ext.cnf", "-out", "server-cert.pem");
        return dir;
    }

    /** A client context trusting only the CA in {@code dir}, verifying the server's name. */
    static SslContext clientTrusting(Path dir) throws IOException {
        return SslContextBuilder.forClient()
                .trustManager(dir.resolve("ca-cert.pem").toFile())
                .endpointIdentificationAlgorithm("HTTPS")
                .build();
    }

    private static void openssl(Path dir, String... args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>();
        command.add(executable());
        command.addAll(List.of(args));
        Path log = dir.resolve("openssl.log");
        Process process = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true)
                .redirectOutput(log.toFile()).start();
        if (!process.waitFor(30, TimeUnit.SECONDS)) {
            process.destroyForcibly().waitFor();
            fail("openssl timed out: " + command);
        }
        if (process.exitValue() != 0) {
            fail("openssl failed (exit " + process.exitValue() + "): " + command + "\n"
                    + Files.readString(log, StandardCharsets.UTF_8));
        }
    }

    private static String executable() {
        for (String dir : System.getenv().getOrDefault("PATH", "/usr/bin").split(File.pathSeparator)) {
            if (Files.isExecutable(Path.of(dir, "openssl"))) {
                return Path.of(dir, "openssl").toString();
            }
        }
        if (Files.isExecutable(Path.of("/usr/bin/openssl"))) {
            return "/usr/bin/openssl";
        }
        return fail("openssl not found: the TLS tests generate their certificates with it. "
                + "Install the Debian package 'openssl' (apt-get install openssl)");
    }
}
