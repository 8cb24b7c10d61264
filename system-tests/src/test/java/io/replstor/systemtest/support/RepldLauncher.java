package io.replstor.systemtest.support;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Starts our server through its launcher: {@code bin/repld serve --listen 127.0.0.1:PORT --export ...}. */
public final class RepldLauncher implements ServerLauncher {
    private final Path root;

    public RepldLauncher(Path root) {
        this.root = root;
    }

    @Override
    public String name() {
        return "repld";
    }

    @Override
    public List<String> command(ServerSpec spec, int port, Path workDir) {
        List<String> argv = new ArrayList<>(List.of(root.resolve("bin/repld").toString(), "serve",
                "--listen", NbdServer.HOST + ":" + port));
        for (ExportSpec export : spec.exports()) {
            argv.add("--export");
            argv.add(export.cliValue());
        }
        spec.tls().ifPresent(tls -> {
            argv.addAll(List.of("--tls", tls.mode().cliValue(),
                    "--tls-cert", tls.cert().toString(), "--tls-key", tls.key().toString()));
            if (tls.ca() != null) {
                argv.addAll(List.of("--tls-ca", tls.ca().toString()));
            }
            if (tls.verifyClient()) {
                argv.add("--tls-verify-client");
            }
        });
        return argv;
    }
}
