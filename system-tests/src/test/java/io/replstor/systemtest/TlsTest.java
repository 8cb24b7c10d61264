package io.replstor.systemtest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.replstor.systemtest.support.CommandResult;
import io.replstor.systemtest.support.ExportSpec;
import io.replstor.systemtest.support.ExternalCommand;
import io.replstor.systemtest.support.NbdServer;
import io.replstor.systemtest.support.ServerSpec;
import io.replstor.systemtest.support.SystemTestFixture;
import io.replstor.systemtest.support.TestPki;
import io.replstor.systemtest.support.TlsSpec;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * STARTTLS with {@code --tls require}: qemu (GnuTLS through {@code tls-creds-x509}) and libnbd ({@code nbds://} with
 * {@code tls-certificates}) connect and move data; plain-text clients are refused. With {@code --tls-verify-client},
 * only clients presenting a certificate issued by {@code --tls-ca} get in.
 */
@Tag("system")
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class TlsTest {
    private static final String EXPORT = "disk";
    private static final long EXPORT_BYTES = 64L << 20;
    private static final Duration CLIENT_TIMEOUT = Duration.ofSeconds(30);

    @RegisterExtension
    final SystemTestFixture fixture = new SystemTestFixture();

    private TestPki pki;

    @BeforeEach
    void createCertificates() throws IOException {
        pki = TestPki.create(fixture.dir().resolve("pki"));
    }

    @Test
    void qemuWritesAndReadsOverRequiredTls() throws IOException {
        NbdServer server = startRequiringTls();
        Path credentials = pki.clientDir(fixture.dir().resolve("client-ca-only"), null);

        CommandResult info = ExternalCommand.of("qemu-img",
                qemuTlsArgs(server, credentials, List.of("info"), List.of())).timeout(CLIENT_TIMEOUT).runSuccessfully();
        assertTrue(info.stdout().contains("(" + EXPORT_BYTES + " bytes)"), info::describe);

        qemuIoOverTls(server, credentials, "write -P 0x3c 0 1M", "read -P 0x3c 0 1M", "flush").assertSuccess();
        qemuIoOverTls(server, credentials, "read -P 0x3c 0 1M").assertSuccess();
    }

    @Test
    void libnbdConnectsWithNbdsUriAndSeesTheExport() throws IOException {
        NbdServer server = startRequiringTls();
        Path credentials = pki.clientDir(fixture.dir().resolve("client-ca-only"), null);

        CommandResult info = nbdinfoTls(server, credentials).assertSuccess();

        JsonNode root = new ObjectMapper().readTree(info.stdout());
        assertTrue(root.path("TLS").asBoolean(), info::describe);
        assertEquals(EXPORT_BYTES, root.get("exports").get(0).path("export-size").asLong(), info.describe());
    }

    @Test
    void plainTextClientsAreRefusedWhenTlsIsRequired() {
        NbdServer server = startRequiringTls();

        CommandResult nbdinfo = ExternalCommand.of("nbdinfo", "--json", server.uri(EXPORT))
                .timeout(CLIENT_TIMEOUT).run().assertFailure();
        assertFalse(nbdinfo.stdout().contains("\"export-size\""), nbdinfo::describe);
        ExternalCommand.of("qemu-io", "-f", "raw", server.uri(EXPORT), "-c", "read 0 4k")
                .timeout(CLIENT_TIMEOUT).run().assertFailure();
    }

    @Test
    void clientCertificateIssuedByTheCaIsAccepted() throws IOException {
        NbdServer server = startRequiringClientCertificates();
        Path credentials = pki.clientDir(fixture.dir().resolve("client-with-cert"), pki);

        nbdinfoTls(server, credentials).assertSuccess();
        qemuIoOverTls(server, credentials, "write -P 0x6d 4M 64k", "read -P 0x6d 4M 64k").assertSuccess();
    }

    @Test
    void clientWithoutCertificateIsRefusedWhenClientsAreVerified() throws IOException {
        NbdServer server = startRequiringClientCertificates();
        Path credentials = pki.clientDir(fixture.dir().resolve("client-ca-only"), null);

        nbdinfoTls(server, credentials).assertFailure();
        qemuIoOverTls(server, credentials, "read 0 4k").assertFailure();
    }

    @Test
    void clientCertificateFromAnotherCaIsRefused() throws IOException {
        NbdServer server = startRequiringClientCertificates();
        TestPki stranger = TestPki.create(fixture.dir().resolve("stranger-pki"));
        Path credentials = pki.clientDir(fixture.dir().resolve("client-foreign-cert"), stranger);

        nbdinfoTls(server, credentials).assertFailure();
    }

    private NbdServer startRequiringTls() {
        return fixture.startServer(disk().withTls(TlsSpec.require(pki.serverCert(), pki.serverKey())));
    }

    private NbdServer startRequiringClientCertificates() {
        return fixture.startServer(disk().withTls(
                TlsSpec.requireClientCertificates(pki.serverCert(), pki.serverKey(), pki.caCert())));
    }

    private ServerSpec disk() {
        return ServerSpec.of(ExportSpec.sparse(EXPORT, fixture.dir().resolve("disk.img"), EXPORT_BYTES));
    }

    /** libnbd reads ca-cert.pem and, if present, client-cert.pem + client-key.pem from {@code tls-certificates}. */
    private static CommandResult nbdinfoTls(NbdServer server, Path credentials) {
        return ExternalCommand.of("nbdinfo", "--json", server.tlsUri(EXPORT) + "?tls-certificates=" + credentials)
                .timeout(CLIENT_TIMEOUT).run();
    }

    /** Runs qemu-io over TLS; returns the result unchecked apart from pattern verification. */
    private static CommandResult qemuIoOverTls(NbdServer server, Path credentials, String... commands) {
        List<String> tail = new ArrayList<>();
        for (String command : commands) {
            tail.add("-c");
            tail.add(command);
        }
        CommandResult result = ExternalCommand.of("qemu-io", qemuTlsArgs(server, credentials, List.of(), tail))
                .timeout(CLIENT_TIMEOUT).run();
        assertFalse(result.stdout().contains("Pattern verification failed"), result::describe);
        return result;
    }

    /** qemu's tls-creds-x509 object reads ca-cert.pem (and client-cert.pem/client-key.pem if present) from dir. */
    private static List<String> qemuTlsArgs(NbdServer server, Path credentials, List<String> head, List<String> tail) {
        List<String> args = new ArrayList<>(head);
        args.addAll(List.of("--object", "tls-creds-x509,id=tls0,dir=" + credentials + ",endpoint=client",
                "--image-opts", "driver=nbd,host=" + NbdServer.HOST + ",port=" + server.port()
                        + ",export=" + EXPORT + ",tls-creds=tls0"));
        args.addAll(tail);
        return args;
    }
}
