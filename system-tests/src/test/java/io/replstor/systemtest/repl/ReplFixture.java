package io.replstor.systemtest.repl;

import io.replstor.systemtest.support.BackgroundProcess;
import io.replstor.systemtest.support.Cleanup;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * JUnit extension owning what one replication test creates outside the JVM, in the style of
 * {@link io.replstor.systemtest.support.SystemTestFixture}: register it on an instance field with
 * {@code @RegisterExtension}. Each test gets a short scratch directory ({@code /tmp/rst-NNN}: admin socket paths
 * must stay under 107 bytes) for configuration files, backing files and sockets; logs go to
 * {@code target/system-test-logs/CLASS/METHOD/} and are kept.
 *
 * <p>After the test, every repld this test started is stopped by its PID (SIGTERM, then SIGKILL), as are helper
 * processes (fio, {@code replctl events}); network namespaces are deleted by name. The test fails when a node that
 * was not deliberately killed exited on its own, did not exit 0 on SIGTERM, logged a Netty buffer leak, or wrote more
 * than 64 MiB of log (a logging loop). On failure the tail of every node's log is printed and the scratch directory is
 * kept; on success it is deleted.
 */
final class ReplFixture implements BeforeEachCallback, AfterEachCallback {
    private static final Path LOG_ROOT = Path.of("target", "system-test-logs");
    private static final int LOG_TAIL_CHARS = 24 * 1024;

    private final List<ReplCluster> clusters = new ArrayList<>();
    private final List<BackgroundProcess> helpers = new ArrayList<>();
    private Cleanup cleanup;
    private Path logDir;
    private Path scratchDir;

    @Override
    public void beforeEach(ExtensionContext context) throws IOException {
        String testClass = context.getRequiredTestClass().getSimpleName();
        String testMethod = context.getRequiredTestMethod().getName();
        String display = context.getDisplayName();
        String leaf = display.equals(testMethod + "()") ? testMethod
                : testMethod + "-" + display.replaceAll("[^A-Za-z0-9_.-]+", "_");
        logDir = Files.createDirectories(LOG_ROOT.resolve(testClass).resolve(leaf).toAbsolutePath());
        deleteChildren(logDir);
        scratchDir = Files.createTempDirectory(Path.of("/tmp"), "rst-");
        cleanup = new Cleanup();
    }

    Path dir() {
        if (scratchDir == null) {
            throw new IllegalStateException("register ReplFixture with @RegisterExtension on an instance field");
        }
        return scratchDir;
    }

    Path logDir() {
        dir();
        return logDir;
    }

    /** Writes the configuration of a cluster (see {@link ClusterSpec}) in its own subdirectory. */
    ReplCluster cluster(ClusterSpec spec) throws IOException {
        Path dir = Files.createDirectory(dir().resolve("c" + clusters.size()));
        NetNamespace ns = null;
        if (spec.namespaceNode() != null) {
            ns = NetNamespace.create();
            NetNamespace created = ns;
            cleanup.add("delete " + created, created::close);
        }
        ReplCluster cluster = new ReplCluster(this, spec, dir, ns);
        clusters.add(cluster);
        return cluster;
    }

    /** A helper process (fio, replctl events) started by the test: stopped by PID after it. */
    BackgroundProcess startHelper(List<String> argv, String logName) throws IOException {
        BackgroundProcess process = BackgroundProcess.start(argv, logDir().resolve(logName));
        helpers.add(process);
        return process;
    }

    @Override
    public void afterEach(ExtensionContext context) throws IOException {
        List<String> problems = new ArrayList<>();
        for (BackgroundProcess helper : helpers) {
            helper.stop();
        }
        for (ReplCluster cluster : clusters) {
            problems.addAll(cluster.stopAllForCleanup());
        }
        boolean failed = context.getExecutionException().isPresent() || !problems.isEmpty();
        if (failed) {
            for (ReplCluster cluster : clusters) {
                cluster.printLogTails(LOG_TAIL_CHARS);
            }
        }
        try {
            cleanup.close();
        } catch (AssertionError e) {
            problems.add(e.getMessage() + ": " + List.of(e.getSuppressed()));
        }
        if (failed) {
            System.out.println("scratch directory kept for inspection: " + scratchDir + "; logs in " + logDir);
        } else {
            deleteRecursively(scratchDir);
        }
        clusters.clear();
        helpers.clear();
        if (!problems.isEmpty()) {
            throw new AssertionError(String.join("\n", problems));
        }
    }

    static String tail(String text, int maxChars) {
        return text.length() <= maxChars ? text
                : "[... " + (text.length() - maxChars) + " chars cut ...]\n" + text.substring(text.length() - maxChars);
    }

    static String lower(String s) {
        return s == null ? "" : s.toLowerCase(Locale.ROOT);
    }

    private static void deleteChildren(Path dir) throws IOException {
        try (Stream<Path> children = Files.list(dir)) {
            for (Path child : children.toList()) {
                deleteRecursively(child);
            }
        }
    }

    /** Deletes a tree; symlinks are deleted, not followed. */
    private static void deleteRecursively(Path dir) throws IOException {
        if (dir == null || !Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        try (Stream<Path> paths = Files.walk(dir)) {
            for (Path path : paths.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(path);
            }
        }
    }
}
