package io.replstor.nbd.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.replstor.nbd.Nbd;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/** LIST, INFO, export names and block sizes against nbdkit with its exportname and blocksize-policy filters. */
@ExtendWith(LeakCheck.class)
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class NbdClientOptionHagglingTest {
    private static final String DESCRIPTION = "replstor test disk";

    @TempDir
    Path dir;

    private static NbdClientOptions options() {
        return NbdClientOptions.builder().timeout(Duration.ofSeconds(10)).build();
    }

    /** Exports alpha and beta (64 MiB each), listed with a description; other names are refused. */
    private Nbdkit namedExports() throws Exception {
        return Nbdkit.start(dir, List.of("--filter=exportname"), "memory", "64M", "exportname=alpha",
                "exportname=beta", "exportdesc=fixed:" + DESCRIPTION, "exportname-list=explicit",
                "exportname-strict=true");
    }

    @Test
    void listOfPlainMemoryServerHasTheDefaultExport() throws Exception {
        try (Nbdkit server = Nbdkit.start(dir, List.of(), "memory", "1M")) {
            List<ExportEntry> exports = NbdClient.list(Nbdkit.HOST, server.port(), options());
            assertEquals(1, exports.size(), exports.toString());
            assertEquals("", exports.get(0).name());
        }
    }

    @Test
    void listReturnsNamedExportsWithDescriptions() throws Exception {
        try (Nbdkit server = namedExports()) {
            List<ExportEntry> exports = NbdClient.list(Nbdkit.HOST, server.port(), options());
            assertEquals(List.of(new ExportEntry("alpha", DESCRIPTION), new ExportEntry("beta", DESCRIPTION)),
                    exports);
            assertTrue(server.alive(), "nbdkit survived LIST + ABORT");
        }
    }

    @Test
    void infoReportsSizeFlagsAndAdvertisedBlockSizes() throws Exception {
        try (Nbdkit server = Nbdkit.start(dir, List.of("--filter=blocksize-policy"), "memory", "64M",
                "blocksize-minimum=512", "blocksize-preferred=4096", "blocksize-maximum=1M")) {
            ExportInfo info = NbdClient.info(Nbdkit.HOST, server.port(), "", options());
            assertEquals(64L << 20, info.sizeBytes());
            assertTrue(info.has(Nbd.TFLAG_HAS_FLAGS) && info.has(Nbd.TFLAG_SEND_FLUSH));
            assertTrue(info.blockSizeAdvertised());
            assertEquals(512, info.blockSizeMin());
            assertEquals(4096, info.blockSizePreferred());
            assertEquals(1 << 20, info.blockSizeMaxPayload());
            try (NbdClient client = NbdClient.connect(options().withAddress(Nbdkit.HOST, server.port()))) {
                assertEquals(512, client.blockSizeMin());
                assertEquals(4096, client.blockSizePreferred());
                assertEquals(1 << 20, client.blockSizeMaxPayload());
            }
        }
    }

    @Test
    void infoAndGoAgreeOnANamedExport() throws Exception {
        try (Nbdkit server = namedExports()) {
            ExportInfo info = NbdClient.info(Nbdkit.HOST, server.port(), "beta", options());
            assertEquals("beta", info.name());
            assertEquals(DESCRIPTION, info.description());
            assertEquals(64L << 20, info.sizeBytes());
            try (NbdClient client = NbdClient.connect(options().withAddress(Nbdkit.HOST, server.port())
                    .withExportName("beta"))) {
                assertEquals(info.sizeBytes(), client.sizeBytes());
                assertEquals(info.transmissionFlags(), client.transmissionFlags());
                assertEquals(DESCRIPTION, client.description());
            }
        }
    }

    @Test
    void infoForAnUnknownExportNamesServerExportOptionAndReply() throws Exception {
        try (Nbdkit server = namedExports()) {
            NbdException e = assertThrows(NbdException.class,
                    () -> NbdClient.info(Nbdkit.HOST, server.port(), "gamma", options()));
            assertEquals(NbdException.Kind.OPTION_REFUSED, e.kind());
            assertEquals(Nbd.OPT_INFO, e.option());
            assertEquals(Nbd.REP_ERR_UNKNOWN, e.replyType(), e.getMessage());
            for (String part : new String[] {Nbdkit.HOST + ":" + server.port(), "'gamma'", "INFO", "ERR_UNKNOWN"}) {
                assertTrue(e.getMessage().contains(part), part + " in: " + e.getMessage());
            }
        }
    }

    @Test
    void connectToAnUnknownExportFailsOnGo() throws Exception {
        try (Nbdkit server = namedExports()) {
            NbdException e = assertThrows(NbdException.class, () -> NbdClient.connect(options()
                    .withAddress(Nbdkit.HOST, server.port()).withExportName("gamma")));
            assertEquals(Nbd.OPT_GO, e.option(), e.getMessage());
            assertEquals(Nbd.REP_ERR_UNKNOWN, e.replyType(), e.getMessage());
            assertTrue(e.getMessage().contains("GO") && e.getMessage().contains("'gamma'"), e.getMessage());
        }
    }

    @Test
    void connectToAClosedPortFailsAsConnectionLost() throws Exception {
        int port;
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getByName(Nbdkit.HOST))) {
            port = socket.getLocalPort();
        }
        NbdException e = assertThrows(NbdException.class,
                () -> NbdClient.connect(options().withAddress(Nbdkit.HOST, port)));
        assertEquals(NbdException.Kind.CONNECTION_LOST, e.kind());
        assertTrue(e.getMessage().contains(Nbdkit.HOST + ":" + port), e.getMessage());
    }

    @Test
    void silentServerTimesOutNamingTheStage() throws Exception {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getByName(Nbdkit.HOST))) {
            NbdClientOptions opts = NbdClientOptions.builder().port(socket.getLocalPort())
                    .timeout(Duration.ofMillis(300)).build();
            NbdException e = assertThrows(NbdException.class, () -> NbdClient.connect(opts));
            assertEquals(NbdException.Kind.TIMEOUT, e.kind());
            assertTrue(e.getMessage().contains("greeting"), e.getMessage());
        }
    }
}
