package io.replstor.nbd.client;

import static io.replstor.nbd.client.ClientTestSupport.await;
import static io.replstor.nbd.client.ClientTestSupport.buffer;
import static io.replstor.nbd.client.ClientTestSupport.pattern;
import static io.replstor.nbd.client.ClientTestSupport.readBytes;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.handler.ssl.SslContext;
import io.replstor.nbd.Nbd;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/** STARTTLS against nbdkit with certificates made by openssl. */
@ExtendWith(LeakCheck.class)
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class NbdClientTlsTest {
    @TempDir
    static Path certDir;
    private static Path serverCerts;
    private static SslContext trusting;
    private static SslContext trustingOtherCa;

    @TempDir
    Path dir;

    @BeforeAll
    static void makeCertificates() throws Exception {
        serverCerts = TestCertificates.create(certDir.resolve("server"), "replstor-test-ca");
        trusting = TestCertificates.clientTrusting(serverCerts);
        trustingOtherCa = TestCertificates.clientTrusting(TestCertificates.create(certDir.resolve("other"),
                "replstor-other-ca"));
    }

    private Nbdkit tlsServer(String mode) throws Exception {
        return Nbdkit.start(dir, List.of("--tls=" + mode, "--tls-certificates=" + serverCerts), "memory", "64M");
    }

    private static NbdClientOptions options(Nbdkit server, SslContext ssl, ClientTlsPolicy policy) {
        return NbdClientOptions.builder().host(Nbdkit.HOST).port(server.port()).tls(ssl, policy)
                .metaContexts(List.of(Nbd.BASE_ALLOCATION)).timeout(Duration.ofSeconds(10)).build();
    }

    @Test
    void requiredTlsCarriesDataAndStructuredReplies() throws Exception {
        try (Nbdkit server = tlsServer("require");
             NbdClient client = NbdClient.connect(options(server, trusting, ClientTlsPolicy.REQUIRED))) {
            assertTrue(client.tls());
            assertTrue(client.structuredReplies());
            assertTrue(client.metaContextId(Nbd.BASE_ALLOCATION).isPresent());
            byte[] data = pattern(3, 256 * 1024);
            await(client.write(4096, buffer(data), Nbd.CMD_FLAG_FUA));
            assertArrayEquals(data, readBytes(client, 4096, data.length));
            await(client.flush());
        }
    }

    @Test
    void listAndInfoWorkOverTls() throws Exception {
        try (Nbdkit server = tlsServer("require")) {
            NbdClientOptions opts = options(server, trusting, ClientTlsPolicy.REQUIRED);
            assertEquals("", NbdClient.list(Nbdkit.HOST, server.port(), opts).get(0).name());
            assertEquals(64L << 20, NbdClient.info(Nbdkit.HOST, server.port(), "", opts).sizeBytes());
        }
    }

    @Test
    void ifOfferedUsesTlsWhenTheServerAllowsIt() throws Exception {
        try (Nbdkit server = tlsServer("on");
             NbdClient client = NbdClient.connect(options(server, trusting, ClientTlsPolicy.IF_OFFERED))) {
            assertTrue(client.tls());
        }
    }

    @Test
    void ifOfferedFallsBackToPlaintextWhenTheServerHasNoTls() throws Exception {
        try (Nbdkit server = Nbdkit.start(dir, List.of(), "memory", "1M");
             NbdClient client = NbdClient.connect(options(server, trusting, ClientTlsPolicy.IF_OFFERED))) {
            assertFalse(client.tls());
            assertEquals(4096, readBytes(client, 0, 4096).length);
        }
    }

    @Test
    void requiredTlsAgainstAPlaintextServerFails() throws Exception {
        try (Nbdkit server = Nbdkit.start(dir, List.of(), "memory", "1M")) {
            NbdException e = assertThrows(NbdException.class,
                    () -> NbdClient.connect(options(server, trusting, ClientTlsPolicy.REQUIRED)));
            assertEquals(NbdException.Kind.TLS, e.kind());
            assertTrue(e.getMessage().contains("STARTTLS") && e.getMessage().contains("REQUIRED"), e.getMessage());
        }
    }

    @Test
    void plaintextClientIsToldTheServerRequiresTls() throws Exception {
        try (Nbdkit server = tlsServer("require")) {
            NbdException e = assertThrows(NbdException.class,
                    () -> NbdClient.connect(options(server, null, ClientTlsPolicy.NEVER)));
            assertEquals(NbdException.Kind.OPTION_REFUSED, e.kind());
            assertEquals(Nbd.REP_ERR_TLS_REQD, e.replyType(), e.getMessage());
            assertTrue(e.getMessage().contains("requires TLS"), e.getMessage());
        }
    }

    @Test
    void serverCertificateFromAnUntrustedCaFailsTheHandshake() throws Exception {
        try (Nbdkit server = tlsServer("require")) {
            NbdException e = assertThrows(NbdException.class,
                    () -> NbdClient.connect(options(server, trustingOtherCa, ClientTlsPolicy.REQUIRED)));
            assertEquals(NbdException.Kind.TLS, e.kind(), e.getMessage());
            assertTrue(e.getMessage().contains(Nbdkit.HOST + ":" + server.port()), e.getMessage());
        }
    }
}
