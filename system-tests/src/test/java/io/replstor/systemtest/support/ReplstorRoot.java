package io.replstor.systemtest.support;

import java.nio.file.Files;
import java.nio.file.Path;

/** Locates the repository root, the directory holding {@code bin/repld}. */
public final class ReplstorRoot {
    /** Set by the parent pom's surefire configuration. */
    public static final String PROPERTY = "replstor.root";

    private ReplstorRoot() {
    }

    public static Path find() {
        String configured = System.getProperty(PROPERTY, "");
        if (!configured.isBlank()) {
            Path root = Path.of(configured).toAbsolutePath().normalize();
            if (Files.exists(root.resolve("bin/repld"))) {
                return root;
            }
            throw new IllegalStateException("-D" + PROPERTY + "=" + configured + " has no bin/repld");
        }
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            if (Files.exists(dir.resolve("bin/repld"))) {
                return dir;
            }
        }
        throw new IllegalStateException("bin/repld not found in " + Path.of("").toAbsolutePath()
                + " or any parent; run the tests from the repository or set -D" + PROPERTY);
    }
}
