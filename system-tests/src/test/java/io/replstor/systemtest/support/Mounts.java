package io.replstor.systemtest.support;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** Reads the kernel's mount table, to unmount only what is still mounted at a path the test owns. */
public final class Mounts {
    private static final Path MOUNTINFO = Path.of("/proc/self/mountinfo");

    private Mounts() {
    }

    /** True if something is mounted exactly at {@code dir}. */
    public static boolean isMountPoint(Path dir) throws IOException {
        String target = dir.toRealPath().toString();
        List<String> lines = Files.readAllLines(MOUNTINFO);
        for (String line : lines) {
            // mountinfo: ID PARENT MAJ:MIN ROOT MOUNTPOINT ...; spaces in paths are escaped as \040
            String[] fields = line.split(" ");
            if (fields.length > 4 && unescape(fields[4]).equals(target)) {
                return true;
            }
        }
        return false;
    }

    private static String unescape(String field) {
        return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\");
    }
}
