package io.replstor.systemtest.support;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

/**
 * A server process the test started, listening on a free loopback port. It is ready once 127.0.0.1:port accepts
 * TCP connections, and is stopped with SIGTERM, then SIGKILL, through the PID of the process started here.
 */
public final class NbdServer implements AutoCloseable {
    /** All test traffic stays on loopback. */
    public static final String HOST = "127.0.0.1";

    private static final Duration READY_TIMEOUT = Duration.ofSeconds(30);
    private static final Duration POLL_INTERVAL = Duration.ofMillis(50);
    private static final int CONNECT_TIMEOUT_MS = 200;

    private final String launcherName;
    private final int port;
    private final BackgroundProcess process;

    private NbdServer(String launcherName, int port, BackgroundProcess process) {
        this.launcherName = launcherName;
        this.port = port;
        this.process = process;
    }

    /** Starts the server on a free loopback port, with its files in {@code workDir}, and waits until it listens. */
    public static NbdServer start(ServerLauncher launcher, ServerSpec spec, Path workDir) throws IOException {
        int port = freeLoopbackPort();
        Path dir = Files.createDirectories(workDir.resolve(launcher.name() + "-" + port));
        BackgroundProcess process = BackgroundProcess.start(launcher.command(spec, port, dir),
                dir.resolve("server.log"));
        NbdServer server = new NbdServer(launcher.name(), port, process);
        try {
            server.awaitListening();
        } catch (RuntimeException | Error e) {
            server.close();
            throw e;
        }
        return server;
    }

    public int port() {
        return port;
    }

    public BackgroundProcess process() {
        return process;
    }

    /** {@code nbd://127.0.0.1:PORT/NAME}, the URI form qemu and libnbd both take. */
    public String uri(String exportName) {
        return "nbd://" + HOST + ":" + port + "/" + exportName;
    }

    /** {@code nbds://127.0.0.1:PORT/NAME}: libnbd's URI for a connection that must use TLS. */
    public String tlsUri(String exportName) {
        return "nbds://" + HOST + ":" + port + "/" + exportName;
    }

    public String describe() {
        return launcherName + " pid " + process.pid() + " on " + HOST + ":" + port + " (log " + process.logFile() + ")";
    }

    @Override
    public void close() {
        process.stop();
    }

    private void awaitListening() {
        long deadlineNs = System.nanoTime() + READY_TIMEOUT.toNanos();
        while (!accepts()) {
            if (!process.isAlive()) {
                throw new AssertionError("server exited before accepting connections: " + describe() + "\n"
                        + process.log());
            }
            if (System.nanoTime() > deadlineNs) {
                throw new AssertionError("server did not accept connections within " + READY_TIMEOUT.toSeconds()
                        + " s: " + describe() + "\n" + process.log());
            }
            try {
                Thread.sleep(POLL_INTERVAL.toMillis());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while waiting for " + describe(), e);
            }
        }
    }

    private boolean accepts() {
        try (Socket socket = new Socket()) {
            socket.connect(new InetSocketAddress(HOST, port), CONNECT_TIMEOUT_MS);
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    /** A port that was free a moment ago; the server binds it right after, so a collision is unlikely. */
    private static int freeLoopbackPort() throws IOException {
        try (ServerSocket socket = new ServerSocket()) {
            socket.setReuseAddress(true);
            socket.bind(new InetSocketAddress(HOST, 0));
            return socket.getLocalPort();
        }
    }
}
