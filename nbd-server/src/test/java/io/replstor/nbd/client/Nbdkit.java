package io.replstor.nbd.client;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.File;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A real nbdkit process on 127.0.0.1 for the client tests. It runs in the foreground ({@code -f}), so the
 * process we start is nbdkit itself; it is stopped through that {@link Process} (never by name). nbdkit writes
 * its pidfile ({@code -P}) once it listens, which is how we know it is ready. Its output goes to a log file in the
 * test's directory, quoted in failures.
 */
final class Nbdkit implements AutoCloseable {
    static final String HOST = "127.0.0.1";
    private static final long START_TIMEOUT_MS = 10_000;
    private static final int PORT_ATTEMPTS = 3;

    private final Process process;
    private final int port;
    private final Path log;

    private Nbdkit(Process process, int port, Path log) {
        this.process = process;
        this.port = port;
        this.log = log;
    }

    /** The nbdkit binary; fails the test (never skips) if it is not installed. */
    static Path executable() {
        List<String> dirs = new ArrayList<>(List.of("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"));
        String path = System.getenv("PATH");
        if (path != null) {
            dirs.addAll(List.of(path.split(File.pathSeparator)));
        }
        for (String dir : dirs) {
            Path candidate = Path.of(dir, "nbdkit");
            if (Files.isExecutable(candidate)) {
                return candidate;
            }
        }
        return fail("nbdkit not found in /usr/sbin, /usr/bin or PATH: the NBD client tests run against this real "
                + "server. Install the Debian package 'nbdkit' (apt-get install nbdkit), which includes the memory "
                + "and file plugins and the filters these tests use");
    }

    /**
     * Starts {@code nbdkit -f -P PIDFILE -i 127.0.0.1 -p PORT serverArgs... plugin pluginArgs...}. The port is
     * picked free; if another process takes it first, nbdkit exits and we try another.
     */
    static Nbdkit start(Path dir, List<String> serverArgs, String plugin, String... pluginArgs)
            throws IOException, InterruptedException {
        Path exe = executable();
        String lastLog = "";
        for (int attempt = 1; attempt <= PORT_ATTEMPTS; attempt++) {
            int port = freePort();
            Path pidFile = dir.resolve("nbdkit-" + port + ".pid");
            Path log = dir.resolve("nbdkit-" + port + ".log");
            List<String> command = new ArrayList<>(List.of(exe.toString(), "-f", "-P", pidFile.toString(),
                    "-i", HOST, "-p", Integer.toString(port)));
            command.addAll(serverArgs);
            command.add(plugin);
            command.addAll(List.of(pluginArgs));
            Process process = new ProcessBuilder(command).redirectErrorStream(true)
                    .redirectOutput(log.toFile()).start();
            if (awaitPidFile(process, pidFile)) {
                long pid = Long.parseLong(Files.readString(pidFile).trim());
                if (pid != process.pid()) {
                    process.destroyForcibly().waitFor();
                    fail("nbdkit wrote pid " + pid + " but we started pid " + process.pid() + ": " + command);
                }
                return new Nbdkit(process, port, log);
            }
            process.destroyForcibly().waitFor();
            lastLog = Files.readString(log, StandardCharsets.UTF_8);
            if (!lastLog.contains("Address already in use")) {
                break;
            }
        }
        return fail("nbdkit did not start: " + String.join(" ", serverArgs) + " " + plugin + " "
                + String.join(" ", pluginArgs) + "\n--- nbdkit output ---\n" + lastLog);
    }

    private static boolean awaitPidFile(Process process, Path pidFile) throws InterruptedException, IOException {
        long deadline = System.currentTimeMillis() + START_TIMEOUT_MS;
        while (System.currentTimeMillis() < deadline) {
            if (Files.exists(pidFile) && !Files.readString(pidFile).isBlank()) {
                return true;
            }
            if (!process.isAlive()) {
                return false;
            }
            Thread.sleep(10);
        }
        return false;
    }

    private static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getByName(HOST))) {
            return socket.getLocalPort();
        }
    }

    int port() {
        return port;
    }

    boolean alive() {
        return process.isAlive();
    }

    String log() {
        try {
            return Files.readString(log, StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "(cannot read " + log + ": " + e + ")";
        }
    }

    /** SIGKILL: the connection drops without nbdkit finishing anything. */
    void kill() throws InterruptedException {
        process.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
    }

    /** SIGTERM, then SIGKILL if it has not exited within 5 s (or the wait is interrupted). */
    @Override
    public void close() {
        process.destroy();
        try {
            if (!process.waitFor(5, TimeUnit.SECONDS)) {
                process.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }
}
