package io.replstor.systemtest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.replstor.systemtest.support.BackgroundProcess;
import io.replstor.systemtest.support.Cleanup;
import io.replstor.systemtest.support.ExportSpec;
import io.replstor.systemtest.support.ExternalCommand;
import io.replstor.systemtest.support.Mounts;
import io.replstor.systemtest.support.NbdServer;
import io.replstor.systemtest.support.ServerSpec;
import io.replstor.systemtest.support.SystemTestFixture;
import io.replstor.systemtest.support.TestData;
import io.replstor.systemtest.support.Tools;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.DigestOutputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The kernel's block layer and ext4 on top of the export: nbdfuse exposes the export as a file, a loop device turns
 * it into a block device, and ext4 writes through it. The files are then checked through a fresh nbdfuse
 * connection and a fresh loop device, so nothing is served from the first mount's caches. Needs root (losetup,
 * mount) and /dev/fuse.
 */
@Tag("system")
@Timeout(value = 300, unit = TimeUnit.SECONDS)
class Ext4OverNbdfuseTest {
    private static final long EXPORT_BYTES = 256L << 20;
    private static final int BIG_FILE_BYTES = 64 << 20;
    private static final int SMALL_FILES = 20;
    private static final Duration TOOL_TIMEOUT = Duration.ofSeconds(60);
    private static final Duration FUSE_READY_TIMEOUT = Duration.ofSeconds(15);
    private static final Duration FUSE_EXIT_TIMEOUT = Duration.ofSeconds(15);

    @RegisterExtension
    final SystemTestFixture fixture = new SystemTestFixture();

    @Test
    void ext4FilesSurviveRemountThroughANewConnectionAndFsckIsClean() throws Exception {
        requireKernelTools();
        NbdServer server = fixture.startServer(
                ServerSpec.of(ExportSpec.sparse("disk", fixture.dir().resolve("disk.img"), EXPORT_BYTES)));
        Path fuseDir = Files.createDirectories(fixture.dir().resolve("fuse"));
        Path mountDir = Files.createDirectories(fixture.dir().resolve("mnt"));
        Map<String, String> written;

        try (Cleanup cleanup = new Cleanup()) {
            Attachment first = attach(server, fuseDir, "nbdfuse-1.log", cleanup);
            run("mkfs.ext4", "-q", "-F", first.loopDevice);
            Cleanup.Step mounted = mount(first.loopDevice, mountDir, "rw", cleanup);
            written = writeFiles(mountDir, TestData.seededRandom("ext4 file contents"));
            run("sync");
            mounted.runNow();
            first.detach();
        }

        try (Cleanup cleanup = new Cleanup()) {
            Attachment second = attach(server, fuseDir, "nbdfuse-2.log", cleanup);
            Cleanup.Step mounted = mount(second.loopDevice, mountDir, "ro", cleanup);
            assertEquals(written, checksums(mountDir), "files read back through a new connection differ");
            mounted.runNow();
            run("e2fsck", "-fn", second.loopDevice);
            second.detach();
        }
    }

    /** nbdfuse serving the export as {@code fuseDir/nbd}, and a loop device on that file; undone in reverse. */
    private final class Attachment {
        private final String loopDevice;
        private final Cleanup.Step loopStep;
        private final Cleanup.Step fuseStep;
        private final BackgroundProcess nbdfuse;

        private Attachment(String loopDevice, Cleanup.Step loopStep, Cleanup.Step fuseStep, BackgroundProcess nbdfuse) {
            this.loopDevice = loopDevice;
            this.loopStep = loopStep;
            this.fuseStep = fuseStep;
            this.nbdfuse = nbdfuse;
        }

        /** The orderly teardown: losetup -d, unmount the FUSE directory, and nbdfuse must then exit 0 by itself. */
        void detach() throws Exception {
            loopStep.runNow();
            fuseStep.runNow();
            OptionalInt exit = nbdfuse.awaitExit(FUSE_EXIT_TIMEOUT);
            assertTrue(exit.isPresent(), () -> "nbdfuse did not exit after its mount was removed:\n" + nbdfuse.log());
            assertEquals(0, exit.getAsInt(), () -> "nbdfuse exit code:\n" + nbdfuse.log());
        }
    }

    private Attachment attach(NbdServer server, Path fuseDir, String logName, Cleanup cleanup) throws Exception {
        BackgroundProcess nbdfuse = BackgroundProcess.start(
                List.of(Tools.require("nbdfuse").toString(), fuseDir.toString(), server.uri("disk")),
                fixture.dir().resolve(logName));
        cleanup.add("stop nbdfuse pid " + nbdfuse.pid(), nbdfuse::stop);
        Cleanup.Step fuseStep = cleanup.add("unmount " + fuseDir, () -> unmountFuse(fuseDir));
        awaitFuseFile(fuseDir.resolve("nbd"), nbdfuse);
        String loopDevice = run("losetup", "-f", "--show", fuseDir.resolve("nbd").toString()).trim();
        assertTrue(loopDevice.startsWith("/dev/loop"), "losetup printed " + loopDevice);
        Cleanup.Step loopStep = cleanup.add("losetup -d " + loopDevice, () -> run("losetup", "-d", loopDevice));
        return new Attachment(loopDevice, loopStep, fuseStep, nbdfuse);
    }

    private static Cleanup.Step mount(String device, Path mountDir, String mode, Cleanup cleanup) {
        run("mount", "-t", "ext4", "-o", mode, device, mountDir.toString());
        return cleanup.add("umount " + mountDir, () -> {
            if (Mounts.isMountPoint(mountDir)) {
                run("umount", mountDir.toString());
            }
        });
    }

    private static void unmountFuse(Path fuseDir) throws IOException {
        if (!Mounts.isMountPoint(fuseDir)) {
            return;
        }
        if (Tools.find("fusermount3").isPresent()) {
            run("fusermount3", "-u", fuseDir.toString());
        } else {
            run("umount", fuseDir.toString());
        }
    }

    private static void awaitFuseFile(Path file, BackgroundProcess nbdfuse) throws Exception {
        long deadlineNs = System.nanoTime() + FUSE_READY_TIMEOUT.toNanos();
        while (!(Files.exists(file) && Files.size(file) == EXPORT_BYTES)) {
            assertTrue(nbdfuse.isAlive(), () -> "nbdfuse exited before serving " + file + ":\n" + nbdfuse.log());
            assertTrue(System.nanoTime() < deadlineNs, () -> "nbdfuse did not serve " + file + " of "
                    + EXPORT_BYTES + " bytes within " + FUSE_READY_TIMEOUT.toSeconds() + " s:\n" + nbdfuse.log());
            Thread.sleep(50);
        }
    }

    /** One 64 MiB file, small files of random sizes and one in a subdirectory; returns name to SHA-256. */
    private static Map<String, String> writeFiles(Path root, SplittableRandom random) throws IOException {
        Map<String, String> sums = new TreeMap<>();
        sums.put("big.bin", writeRandomFile(root.resolve("big.bin"), BIG_FILE_BYTES, random));
        for (int i = 0; i < SMALL_FILES; i++) {
            String name = "small-" + i + ".bin";
            sums.put(name, writeRandomFile(root.resolve(name), 1 + random.nextInt(200_000), random));
        }
        Files.createDirectories(root.resolve("sub"));
        sums.put("sub/empty", writeRandomFile(root.resolve("sub/empty"), 0, random));
        sums.put("sub/nested.bin", writeRandomFile(root.resolve("sub/nested.bin"), 4096, random));
        return sums;
    }

    private static String writeRandomFile(Path file, int length, SplittableRandom random) throws IOException {
        MessageDigest digest = sha256();
        try (OutputStream out = new DigestOutputStream(Files.newOutputStream(file), digest)) {
            byte[] chunk = new byte[1 << 20];
            for (int remaining = length; remaining > 0; ) {
                int n = Math.min(remaining, chunk.length);
                random.nextBytes(chunk);
                out.write(chunk, 0, n);
                remaining -= n;
            }
        }
        return HexFormat.of().formatHex(digest.digest());
    }

    private static Map<String, String> checksums(Path root) throws IOException {
        Map<String, String> sums = new TreeMap<>();
        try (var paths = Files.walk(root)) {
            for (Path file : paths.filter(Files::isRegularFile).toList()) {
                sums.put(root.relativize(file).toString(), TestData.sha256(file));
            }
        }
        return sums;
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every JVM has SHA-256", e);
        }
    }

    private static void requireKernelTools() {
        for (String tool : List.of("nbdfuse", "losetup", "mkfs.ext4", "e2fsck", "mount", "umount", "sync")) {
            Tools.require(tool);
        }
        assertTrue(Files.exists(Path.of("/dev/fuse")), "/dev/fuse is missing: load the fuse module (modprobe fuse)");
    }

    private static String run(String program, String... args) {
        return ExternalCommand.of(program, args).timeout(TOOL_TIMEOUT).runSuccessfully().stdout();
    }
}
