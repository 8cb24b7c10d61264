package io.replstor.systemtest.support;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.function.Function;

/**
 * Development stand-in: nbdkit's file plugin configured to advertise what our server promises. The file plugin's
 * {@code dir=} mode serves every file of a directory under its file name, so each export becomes a symlink there;
 * {@code nozero fastzeromode=slow} advertises FAST_ZERO (answering ENOTSUP, which the spec allows);
 * {@code blocksize-policy} advertises INFO_BLOCK_SIZE; {@code exportname} carries a description.
 * What nbdkit cannot do per export (read-only, description) must be the same for all exports.
 */
public final class NbdkitLauncher implements ServerLauncher {
    @Override
    public String name() {
        return "nbdkit";
    }

    @Override
    public List<String> command(ServerSpec spec, int port, Path workDir) throws IOException {
        Path exportDir = Files.createDirectories(workDir.resolve("exports"));
        for (ExportSpec export : spec.exports()) {
            createIfMissing(export);
            Files.createSymbolicLink(exportDir.resolve(export.name()), export.path());
        }
        List<String> argv = new ArrayList<>(List.of(Tools.require("nbdkit").toString(), "-f",
                "-P", workDir.resolve("nbdkit.pid").toString(), "-i", NbdServer.HOST, "-p", Integer.toString(port)));
        if (same(spec, "read-only", ExportSpec::readOnly)) {
            argv.add("-r");
        }
        if (spec.tls().isPresent()) {
            argv.addAll(tlsOptions(spec.tls().get(), Files.createDirectories(workDir.resolve("tls"))));
        }
        String description = same(spec, "description", ExportSpec::description);
        argv.addAll(List.of("--filter=nozero", "--filter=blocksize-policy"));
        if (description != null) {
            argv.add("--filter=exportname");
        }
        argv.addAll(List.of("file", "dir=" + exportDir, "zeromode=plugin", "fastzeromode=slow",
                "blocksize-minimum=512", "blocksize-preferred=4096", "blocksize-maximum=33554432"));
        if (description != null) {
            argv.add("exportdesc=fixed:" + description);
        }
        return argv;
    }

    private static void createIfMissing(ExportSpec export) throws IOException {
        if (export.sizeBytes() > 0 && !Files.exists(export.path())) {
            try (RandomAccessFile file = new RandomAccessFile(export.path().toFile(), "rw")) {
                file.setLength(export.sizeBytes());
            }
        }
    }

    /** nbdkit reads the GnuTLS layout: ca-cert.pem, server-cert.pem, server-key.pem in one directory. */
    private static List<String> tlsOptions(TlsSpec tls, Path certDir) throws IOException {
        Files.createSymbolicLink(certDir.resolve("server-cert.pem"), tls.cert().toAbsolutePath());
        Files.createSymbolicLink(certDir.resolve("server-key.pem"), tls.key().toAbsolutePath());
        // nbdkit refuses to start without ca-cert.pem even when it verifies no client; without a CA, any
        // certificate satisfies the loader and is never used
        Path ca = tls.ca() != null ? tls.ca() : tls.cert();
        Files.createSymbolicLink(certDir.resolve("ca-cert.pem"), ca.toAbsolutePath());
        String mode = switch (tls.mode()) {
            case OFF -> "off";
            case ALLOW -> "on";
            case REQUIRE -> "require";
        };
        List<String> options = new ArrayList<>(List.of("--tls=" + mode, "--tls-certificates=" + certDir));
        if (tls.verifyClient()) {
            options.add("--tls-verify-peer");
        }
        return options;
    }

    private static <T> T same(ServerSpec spec, String what, Function<ExportSpec, T> property) {
        T first = property.apply(spec.exports().get(0));
        for (ExportSpec export : spec.exports()) {
            if (!Objects.equals(first, property.apply(export))) {
                throw new IllegalArgumentException("the nbdkit stand-in needs the same " + what
                        + " on every export: " + spec.exports());
            }
        }
        return first;
    }
}
