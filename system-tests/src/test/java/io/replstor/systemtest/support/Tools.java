package io.replstor.systemtest.support;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Finds the third-party programs the system tests drive. A missing program fails the test with the Debian package
 * that provides it: these tests exist to run real clients, so skipping would hide that nothing was tested.
 */
public final class Tools {
    /** Program name to the Debian 12 package that installs it. */
    private static final Map<String, String> DEBIAN_PACKAGES = Map.ofEntries(
            Map.entry("qemu-io", "qemu-utils"),
            Map.entry("qemu-img", "qemu-utils"),
            Map.entry("nbdinfo", "libnbd-bin"),
            Map.entry("nbdcopy", "libnbd-bin"),
            Map.entry("nbdfuse", "libnbd-bin"),
            Map.entry("fio", "fio"),
            Map.entry("nbd-client", "nbd-client"),
            Map.entry("nbdkit", "nbdkit"),
            Map.entry("losetup", "mount"),
            Map.entry("mount", "mount"),
            Map.entry("umount", "mount"),
            Map.entry("mkfs.ext4", "e2fsprogs"),
            Map.entry("e2fsck", "e2fsprogs"),
            Map.entry("openssl", "openssl"),
            Map.entry("fusermount3", "fuse3"),
            Map.entry("cmp", "diffutils"),
            Map.entry("sync", "coreutils"),
            Map.entry("sleep", "coreutils"),
            Map.entry("sh", "dash"),
            Map.entry("/usr/bin/python3", "python3-libnbd"));

    /** Searched after PATH: a non-root PATH often lacks the sbin directories where losetup and nbd-client live. */
    private static final List<String> EXTRA_DIRS = List.of("/usr/local/sbin", "/usr/sbin", "/sbin");

    private Tools() {
    }

    /** The absolute path of {@code program}; fails the test naming the Debian package when it is not installed. */
    public static Path require(String program) {
        return find(program).orElseGet(() -> fail(program + " is not installed (searched PATH and "
                + String.join(", ", EXTRA_DIRS) + "): install the Debian package "
                + DEBIAN_PACKAGES.getOrDefault(program, "that provides " + program)
                + ", e.g. apt-get install " + DEBIAN_PACKAGES.getOrDefault(program, program)));
    }

    /** The absolute path of {@code program}, if it is installed. */
    public static Optional<Path> find(String program) {
        if (program.startsWith("/")) {
            Path p = Path.of(program);
            return Files.isRegularFile(p) && Files.isExecutable(p) ? Optional.of(p) : Optional.empty();
        }
        for (String dir : searchDirs()) {
            Path candidate = Path.of(dir, program);
            if (Files.isRegularFile(candidate) && Files.isExecutable(candidate)) {
                return Optional.of(candidate);
            }
        }
        return Optional.empty();
    }

    private static List<String> searchDirs() {
        List<String> dirs = new ArrayList<>();
        String path = System.getenv("PATH");
        if (path != null) {
            for (String dir : path.split(File.pathSeparator)) {
                if (!dir.isEmpty()) {
                    dirs.add(dir);
                }
            }
        }
        dirs.addAll(EXTRA_DIRS);
        return dirs;
    }
}
