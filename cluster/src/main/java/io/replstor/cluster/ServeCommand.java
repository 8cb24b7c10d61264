package io.replstor.cluster;

import io.netty.handler.ssl.SslContext;
import io.replstor.common.Sizes;
import io.replstor.common.io.BlockDevice;
import io.replstor.common.io.FileBackingStore;
import io.replstor.nbd.server.NbdExport;
import io.replstor.nbd.server.NbdServer;
import io.replstor.nbd.server.NbdServerConfig;
import io.replstor.nbd.server.TlsPolicy;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintWriter;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

/**
 * {@code repld serve}: an NBD server over files or block devices, from the command line
 * ({@code --export NAME=PATH,size=1GiB}) and/or a configuration file. Runs until SIGTERM/SIGINT,
 * then finishes in-flight requests, flushes every export and exits 0.
 */
@Command(name = "serve", mixinStandardHelpOptions = true, versionProvider = Version.class,
        description = "Serve files or block devices over NBD.",
        exitCodeListHeading = "%nExit codes:%n",
        exitCodeList = {"0:stopped cleanly (SIGTERM/SIGINT)", "1:failed to start or failed at run time",
                "2:bad command line or configuration"})
final class ServeCommand implements Callable<Integer> {
    private static final Logger LOG = LoggerFactory.getLogger(ServeCommand.class);

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--config", paramLabel = "FILE", description = "TOML configuration file ([nbd] and [[export]])")
    Path config;

    @Option(names = "--listen", paramLabel = "HOST:PORT", description = "address to listen on (default 127.0.0.1:10809)")
    String listen;

    @Option(names = "--export", paramLabel = "NAME=PATH[,size=SIZE][,readonly][,description=TEXT][,allow=NET;NET]",
            description = "export a file or block device; a missing file of the given size is created sparse")
    List<String> exports = new ArrayList<>();

    @Option(names = "--tls", paramLabel = "off|allow|require", description = "TLS policy (default off)")
    String tls;

    @Option(names = "--tls-cert", paramLabel = "PEM", description = "server certificate")
    Path tlsCert;

    @Option(names = "--tls-key", paramLabel = "PEM", description = "server private key (PKCS#8)")
    Path tlsKey;

    @Option(names = "--tls-ca", paramLabel = "PEM", description = "CA that signs client certificates")
    Path tlsCa;

    @Option(names = "--tls-verify-client", description = "require a client certificate signed by --tls-ca")
    boolean tlsVerifyClient;

    @Option(names = "--io-threads", paramLabel = "N", description = "disk I/O threads (default ${DEFAULT-VALUE})")
    Integer ioThreads;

    @Option(names = "--max-payload", paramLabel = "SIZE", description = "largest read/write (default 32MiB)")
    String maxPayload;

    @Option(names = "--admin", paramLabel = "SOCKET", description = "admin API Unix socket (for replctl status)")
    Path admin;

    private final java.util.Map<String, Path> exportPaths = new java.util.LinkedHashMap<>();

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        NbdServerConfig cfg;
        List<BlockDevice> opened = new ArrayList<>();
        try {
            cfg = buildConfig(opened);
        } catch (ConfigException | IllegalArgumentException e) {
            closeAll(opened);
            err.println("repld: " + e.getMessage());
            return 2;
        } catch (IOException e) {
            closeAll(opened);
            err.println("repld: " + e.getMessage());
            return 1;
        }
        NbdServer server;
        try {
            server = NbdServer.start(cfg);
        } catch (IOException e) {
            closeAll(opened);
            err.println("repld: " + e.getMessage());
            return 1;
        }
        AdminServer adminServer = null;
        if (admin != null) {
            try {
                adminServer = new AdminServer(admin, server, exportPaths);
            } catch (IOException e) {
                server.close();
                closeAll(opened);
                err.println("repld: " + e.getMessage());
                return 1;
            }
        }
        CountDownLatch stop = new CountDownLatch(1);
        Signals.onTerminate(stop::countDown);
        printReady(out, server);
        stop.await();
        LOG.info("stopping: finishing in-flight requests and flushing exports");
        if (adminServer != null) {
            adminServer.close();
        }
        server.close();
        closeAll(opened);
        LOG.info("stopped");
        return 0;
    }

    private NbdServerConfig buildConfig(List<BlockDevice> opened) throws ConfigException, IOException {
        ServeConfig file = config == null ? null : ServeConfig.load(config);
        List<ExportSpec> specs = new ArrayList<>();
        if (file != null) {
            specs.addAll(file.exports());
        }
        for (String e : exports) {
            specs.add(ExportSpec.parse(e));
        }
        if (specs.isEmpty()) {
            throw new ConfigException("nothing to serve: give --export NAME=PATH[,size=SIZE] or a --config file with [[export]]");
        }
        String addr = listen != null ? listen : file != null && file.listen() != null ? file.listen() : "127.0.0.1:10809";
        List<NbdExport> nbdExports = new ArrayList<>();
        for (ExportSpec s : specs) {
            FileBackingStore dev = FileBackingStore.open(s.name(), s.path(), s.readOnly(), s.sizeBytes());
            opened.add(dev);
            exportPaths.put(s.name(), s.path().toAbsolutePath());
            nbdExports.add(new NbdExport(s.name(), s.description(), dev, s.allow()));
        }
        NbdServerConfig cfg = NbdServerConfig.of(parseAddress(addr), nbdExports);
        TlsPolicy policy = tls != null ? TlsPolicy.parse(tls) : file != null ? file.tls() : TlsPolicy.OFF;
        if (policy != TlsPolicy.OFF) {
            Path cert = tlsCert != null ? tlsCert : file != null ? file.tlsCert() : null;
            Path key = tlsKey != null ? tlsKey : file != null ? file.tlsKey() : null;
            Path ca = tlsCa != null ? tlsCa : file != null ? file.tlsCa() : null;
            boolean verify = tlsVerifyClient || (file != null && file.tlsVerifyClient());
            SslContext ctx = TlsContexts.server(cert, key, ca, verify);
            cfg = cfg.withTls(policy, ctx);
        }
        Integer threads = ioThreads != null ? ioThreads : file != null ? file.ioThreads() : null;
        if (threads != null) {
            cfg = cfg.withIoThreads(threads);
        }
        Long payload = maxPayload != null ? Long.valueOf(Sizes.parse(maxPayload)) : file != null ? file.maxPayload() : null;
        if (payload != null) {
            if (payload > Integer.MAX_VALUE) {
                throw new ConfigException("max payload " + payload + " is too large (at most 256MiB)");
            }
            cfg = cfg.withMaxPayload(payload.intValue());
        }
        return cfg;
    }

    static InetSocketAddress parseAddress(String text) throws ConfigException {
        int colon = text.lastIndexOf(':');
        if (colon <= 0) {
            throw new ConfigException("listen address '" + text + "': expected HOST:PORT, e.g. 127.0.0.1:10809");
        }
        String host = text.substring(0, colon);
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
        }
        int port;
        try {
            port = Integer.parseInt(text.substring(colon + 1));
        } catch (NumberFormatException e) {
            port = -1;
        }
        if (port < 0 || port > 65535) {
            throw new ConfigException("listen address '" + text + "': port must be 0-65535");
        }
        return new InetSocketAddress(host, port);
    }

    private static void printReady(PrintWriter out, NbdServer server) {
        InetSocketAddress a = server.localAddress();
        String host = a.getAddress().isAnyLocalAddress() ? "127.0.0.1" : a.getAddress().getHostAddress();
        if (host.contains(":")) {
            host = "[" + host + "]";
        }
        out.println("replstor NBD server ready on " + host + ":" + a.getPort());
        for (NbdExport e : server.config().exports()) {
            String uri = "nbd" + (server.config().tlsPolicy() == TlsPolicy.REQUIRE ? "s" : "") + "://" + host + ":"
                    + a.getPort() + "/" + e.name();
            out.printf("  export %-12s %10s %s  %s%n", e.name(), Sizes.format(e.device().sizeBytes()),
                    e.readOnly() ? "ro" : "rw", uri);
        }
        out.flush();
    }

    private static void closeAll(List<BlockDevice> devices) {
        for (BlockDevice d : devices) {
            d.close();
        }
    }
}
