package io.replstor.systemtest.support;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.OptionalInt;
import java.util.stream.Stream;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * JUnit extension owning what one system test creates outside the JVM: register it on an instance field with
 * {@code @RegisterExtension}; each test gets a fresh scratch directory ({@link #dir()}) and starts servers with
 * {@link #startServer}. After the test the servers are stopped by PID. Server logs are kept under
 * {@code target/system-test-logs/CLASS/METHOD/}. A passing test's scratch directory is deleted; a failing test's
 * is kept and named, and the server logs are printed.
 *
 * <p>The test also fails when a server exited on its own during the test, did not exit 0 on SIGTERM, left child
 * processes behind, or logged a Netty buffer leak.
 *
 * <p>This replaces {@code @TempDir(cleanup = ON_SUCCESS)}: in the JUnit this build uses (5.11.4; a regression since
 * 5.10.1, junit-framework issue 4464) it keeps the directory of every test after the first failure, and here that
 * is hundreds of MiB per test.
 */
public final class SystemTestFixture implements BeforeEachCallback, AfterEachCallback {
    private static final Path LOG_ROOT = Path.of("target", "system-test-logs");
    private static final int MAX_PRINTED_LOG_CHARS = 64 * 1024;

    private final ServerLauncher launcher = ServerLauncher.fromSystemProperties();
    private final List<NbdServer> servers = new ArrayList<>();
    private Path logDir;
    private Path scratchDir;

    @Override
    public void beforeEach(ExtensionContext context) throws IOException {
        String testClass = context.getRequiredTestClass().getSimpleName();
        String testMethod = context.getRequiredTestMethod().getName();
        logDir = LOG_ROOT.resolve(testClass).resolve(testMethod).toAbsolutePath();
        deleteRecursively(logDir);
        scratchDir = Files.createTempDirectory("replstor-" + testClass + "-" + testMethod + "-");
    }

    /** This test's scratch directory, for export files, certificates and mount points. */
    public Path dir() {
        if (scratchDir == null) {
            throw new IllegalStateException("register SystemTestFixture with @RegisterExtension on an instance field");
        }
        return scratchDir;
    }

    /** Starts a server for this test on a free loopback port; it is stopped after the test. */
    public NbdServer startServer(ServerSpec spec) {
        dir();
        try {
            NbdServer server = NbdServer.start(launcher, spec, logDir);
            servers.add(server);
            return server;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start the " + launcher.name() + " server", e);
        }
    }

    @Override
    public void afterEach(ExtensionContext context) throws IOException {
        List<String> problems = stopServers();
        boolean failed = context.getExecutionException().isPresent() || !problems.isEmpty();
        if (scratchDir == null) {
            System.out.println("no scratch directory: the test failed before one was made");
        } else if (failed) {
            servers.forEach(SystemTestFixture::printLog);
            System.out.println("scratch directory kept for inspection: " + scratchDir);
        } else if (containsMountPoint(scratchDir)) {
            problems.add("something is still mounted under " + scratchDir + "; the directory was kept");
        } else {
            deleteRecursively(scratchDir);
        }
        servers.clear();
        if (!problems.isEmpty()) {
            throw new AssertionError(String.join("\n", problems));
        }
    }

    private List<String> stopServers() {
        List<String> problems = new ArrayList<>();
        for (NbdServer server : servers) {
            BackgroundProcess process = server.process();
            OptionalInt crashed = process.exitedUnexpectedly();
            server.close();
            crashed.ifPresent(code -> problems.add(server.describe() + " exited on its own with code " + code
                    + " during the test"));
            int exitCode = process.exitCode().orElse(-1);
            if (crashed.isEmpty() && exitCode != 0) {
                problems.add(server.describe() + " did not stop cleanly on SIGTERM: exit code " + exitCode
                        + " (137 = killed after the grace period), expected 0");
            }
            if (!process.strayChildren().isEmpty()) {
                problems.add(server.describe() + " left child processes " + process.strayChildren()
                        + " alive at stop (does the launcher exec?); they were stopped by PID");
            }
            if (process.logContains("LEAK: ")) {
                problems.add(server.describe() + " logged a Netty buffer leak");
            }
        }
        return problems;
    }

    private static boolean containsMountPoint(Path dir) throws IOException {
        try (Stream<Path> paths = Files.walk(dir)) {
            for (Path path : paths.filter(Files::isDirectory).toList()) {
                if (Mounts.isMountPoint(path)) {
                    return true;
                }
            }
        }
        return false;
    }

    /** Deletes a tree; symlinks are deleted, not followed. */
    private static void deleteRecursively(Path dir) throws IOException {
        if (!Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        try (Stream<Path> paths = Files.walk(dir)) {
            for (Path path : paths.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(path);
            }
        }
    }

    private static void printLog(NbdServer server) {
        String log = server.process().log();
        if (log.length() > MAX_PRINTED_LOG_CHARS) {
            log = "[... " + (log.length() - MAX_PRINTED_LOG_CHARS) + " chars cut ...]\n"
                    + log.substring(log.length() - MAX_PRINTED_LOG_CHARS);
        }
        System.out.println("===== " + server.describe() + " =====\n" + log + "\n===== end of server log =====");
    }
}
