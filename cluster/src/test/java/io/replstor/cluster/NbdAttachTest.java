package io.replstor.cluster;

import io.replstor.replicator.engine.EngineException;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * attach/detach against a fake /sys/block and /proc, with a fake nbd-client and modprobe that do
 * what the kernel would (the test host has no nbd module; the real thing runs in the appliance's
 * two-node boot test).
 */
@Timeout(20)
class NbdAttachTest {
    private static final NbdAttach.Target R0 = new NbdAttach.Target("alpha", "r0", "127.0.0.1", 10809);
    private static final long SIZE = 256L << 20;

    @TempDir
    Path dir;
    Path sys;
    Path proc;
    final List<List<String>> commands = new CopyOnWriteArrayList<>();
    /** What the fake tools do; by default they act like the kernel and nbd-client. */
    Function<List<String>, NbdAttach.Result> tools;
    NbdAttach attach;

    @BeforeEach
    void setUp() throws IOException {
        sys = Files.createDirectories(dir.resolve("sys/block"));
        proc = Files.createDirectories(dir.resolve("proc"));
        Files.writeString(proc.resolve("mounts"), "/dev/vda1 / ext4 rw 0 0\n");
        Files.writeString(proc.resolve("swaps"), "Filename Type Size Used Priority\n");
        tools = this::kernel;
        attach = new NbdAttach(sys, proc, (cmd, timeout) -> {
            commands.add(cmd);
            return tools.apply(cmd);
        }, Duration.ofMillis(500));
    }

    private void nbdModule(int devices) throws IOException {
        for (int i = 0; i < devices; i++) {
            Path d = Files.createDirectories(sys.resolve("nbd" + i));
            Files.writeString(d.resolve("size"), "0\n");
            Files.createDirectories(d.resolve("holders"));
        }
    }

    /** A device connected by a process with this command line. */
    private void connect(String dev, long pid, String... argv) throws IOException {
        Path d = sys.resolve(dev.substring(5));
        Files.writeString(d.resolve("size"), SIZE / 512 + "\n");
        Files.writeString(d.resolve("pid"), pid + "\n");
        Path p = Files.createDirectories(proc.resolve(Long.toString(pid)));
        Files.write(p.resolve("cmdline"), (String.join("\0", argv) + "\0").getBytes(StandardCharsets.UTF_8));
    }

    private NbdAttach.Result kernel(List<String> cmd) {
        try {
            String tool = Path.of(cmd.get(0)).getFileName().toString();
            if (tool.equals("modprobe")) {
                nbdModule(16);
                return new NbdAttach.Result(0, "");
            }
            if (cmd.get(1).equals("-d")) {
                Path d = sys.resolve(cmd.get(2).substring(5));
                Files.deleteIfExists(d.resolve("pid"));
                Files.writeString(d.resolve("size"), "0\n");
                return new NbdAttach.Result(0, "");
            }
            String dev = cmd.get(cmd.size() - 1);
            connect(dev, 4242, cmd.toArray(String[]::new));
            return new NbdAttach.Result(0, "Negotiation: ..size = 256MB\nbs=4096, sz=268435456 bytes\n");
        } catch (IOException e) {
            throw new RuntimeException(e);
        }
    }

    @Test
    void theCommandLineIsNbdClient324sIoctlModeWithPersistAndTimeout() {
        assertEquals(List.of("/usr/sbin/nbd-client", "-N", "r0", "-b", "4096", "-t", "60", "-persist", "-nonetlink",
                        "10.99.0.1", "10809", "/dev/nbd3"),
                NbdAttach.connectCommand("/usr/sbin/nbd-client", new NbdAttach.Target("beta", "r0", "10.99.0.1",
                        10809), "/dev/nbd3"));
    }

    @Test
    void aWildcardListenAddressIsReachedOnLoopback() {
        assertEquals("127.0.0.1", NbdAttach.connectHost("0.0.0.0"));
        assertEquals("::1", NbdAttach.connectHost("::"));
        assertEquals("10.99.0.2", NbdAttach.connectHost("10.99.0.2"));
        assertEquals("alpha.example.com", NbdAttach.connectHost("alpha.example.com"));
    }

    @Test
    void attachLoadsTheModuleThenTakesTheFirstFreeDeviceInNumberOrder() throws Exception {
        NbdAttach.Outcome o = attach.attach(R0, null, null);
        assertEquals("/dev/nbd0", o.device());
        assertEquals("r0 on alpha: attached to /dev/nbd0", o.message());
        assertEquals("modprobe", Path.of(commands.get(0).get(0)).getFileName().toString());
        assertEquals(List.of("nbd"), commands.get(0).subList(1, 2));
        List<String> connect = commands.get(1);
        assertEquals("nbd-client", Path.of(connect.get(0)).getFileName().toString());
        assertEquals(List.of("-N", "r0", "-b", "4096", "-t", "60", "-persist", "-nonetlink", "127.0.0.1", "10809",
                "/dev/nbd0"), connect.subList(1, connect.size()));
    }

    @Test
    void freeMeansNoPidAndNoSize() throws Exception {
        nbdModule(12);
        connect("/dev/nbd0", 11, "qemu-nbd", "-c", "/dev/nbd0", "x.img");
        Files.writeString(sys.resolve("nbd1/pid"), "12\n");           // pid without a size yet
        Files.writeString(sys.resolve("nbd2/size"), "2048\n");         // size without a pid
        assertEquals(Optional.of("/dev/nbd3"), attach.firstFree());
        for (int i = 3; i < 12; i++) {
            connect("/dev/nbd" + i, 100 + i, "nbd-client", "-N", "other", "h", "/dev/nbd" + i);
        }
        assertEquals(Optional.empty(), attach.firstFree());
        assertEquals(List.of("/dev/nbd0", "/dev/nbd1", "/dev/nbd2", "/dev/nbd3", "/dev/nbd4", "/dev/nbd5",
                "/dev/nbd6", "/dev/nbd7", "/dev/nbd8", "/dev/nbd9", "/dev/nbd10", "/dev/nbd11"), attach.devices());
        EngineException e = assertThrows(EngineException.class, () -> attach.attach(R0, null, null));
        assertEquals(EngineException.Code.STATE, e.code());
        assertTrue(e.getMessage().startsWith("r0 on alpha: no free NBD device (all 12"), e.getMessage());
        assertTrue(commands.isEmpty(), "no nbd-client run: " + commands);
    }

    @Test
    void aRequestedDeviceMustExistAndBeFree() throws Exception {
        nbdModule(4);
        connect("/dev/nbd2", 77, "/usr/sbin/nbd-client", "-N", "vm1", "10.0.0.9", "/dev/nbd2");
        EngineException busy = assertThrows(EngineException.class, () -> attach.attach(R0, null, "/dev/nbd2"));
        assertEquals(EngineException.Code.IN_USE, busy.code());
        assertEquals("r0 on alpha: /dev/nbd2 is in use (connected by pid 77: /usr/sbin/nbd-client -N vm1 10.0.0.9"
                + " /dev/nbd2)", busy.getMessage());
        EngineException missing = assertThrows(EngineException.class, () -> attach.attach(R0, null, "/dev/nbd9"));
        assertEquals(EngineException.Code.BAD_REQUEST, missing.code());
        assertTrue(missing.getMessage().contains("no such NBD device /dev/nbd9"), missing.getMessage());
        EngineException bad = assertThrows(EngineException.class, () -> attach.attach(R0, null, "/dev/sda"));
        assertEquals(EngineException.Code.BAD_REQUEST, bad.code());
        assertTrue(commands.isEmpty(), "no nbd-client run: " + commands);

        NbdAttach.Outcome o = attach.attach(R0, null, "/dev/nbd3");
        assertEquals("/dev/nbd3", o.device());
    }

    @Test
    void theNodesRefusalIsPassedOnWithWhereThePrimaryIs() throws Exception {
        nbdModule(2);
        // what nbd-client 3.24 prints: stdout's "Negotiation: .." without a newline, then stderr's
        // error, the server's message cut at 149 characters
        tools = cmd -> new NbdAttach.Result(1, "Negotiation: ..Error: Connection not allowed by server policy."
                + " Server said: export 'r0': resource r0 cannot be used on beta: peer alpha is Primary; demote it"
                + " first (dual-p\nExiting.\n");
        EngineException e = assertThrows(EngineException.class, () -> attach.attach(
                new NbdAttach.Target("beta", "r0", "10.99.0.2", 10809,
                        "beta is Secondary, disk UpToDate; the Primary is alpha, nbd://10.99.0.1:10809/r0"), null, null));
        assertEquals(EngineException.Code.STATE, e.code());
        assertEquals("r0 on beta: attach refused (beta is Secondary, disk UpToDate; the Primary is alpha,"
                + " nbd://10.99.0.1:10809/r0): nbd-client /dev/nbd0: Error: Connection not allowed by server policy."
                + " Server said: export 'r0': resource r0 cannot be used on beta: peer alpha is Primary; demote it"
                + " first (dual-p", e.getMessage());

        tools = cmd -> new NbdAttach.Result(1, "Error: Socket failed: Connection refused\nExiting.\n");
        EngineException io = assertThrows(EngineException.class, () -> attach.attach(R0, null, null));
        assertEquals(EngineException.Code.IO, io.code());
        assertEquals("r0 on alpha: attaching /dev/nbd0 failed: nbd-client exited 1: Error: Socket failed:"
                + " Connection refused", io.getMessage());
    }

    @Test
    void nbdClientsProgressLinesAreLeftOut() {
        assertEquals("Error: x", NbdAttach.oneLine("Negotiation: ..Error: x\nExiting.\n"));
        assertEquals("(no output)", NbdAttach.oneLine("Negotiation: ..size = 256MB\nbs=4096, sz=268435456 bytes\n"));
        assertEquals("a b", NbdAttach.oneLine("a\r\n\n b \n"));
    }

    @Test
    void aDeviceThatNeverGetsASizeIsDisconnectedAgain() throws Exception {
        nbdModule(1);
        tools = cmd -> {
            if (cmd.get(1).equals("-d")) {
                return kernel(cmd);
            }
            try {
                Files.writeString(sys.resolve("nbd0/pid"), "5\n"); // connected, but the kernel never sizes it
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
            return new NbdAttach.Result(0, "");
        };
        EngineException e = assertThrows(EngineException.class, () -> attach.attach(R0, null, null));
        assertEquals(EngineException.Code.IO, e.code());
        assertTrue(e.getMessage().startsWith("r0 on alpha: /dev/nbd0 has no size"), e.getMessage());
        assertEquals(List.of("-d", "/dev/nbd0"), commands.get(commands.size() - 1).subList(1, 3));
    }

    @Test
    void attachIsIdempotentAndRefusesASecondDevice() throws Exception {
        NbdAttach.Outcome o = attach.attach(R0, null, null);
        int runs = commands.size();
        assertEquals("r0 on alpha: already attached to /dev/nbd0", attach.attach(R0, o.device(), null).message());
        assertEquals("/dev/nbd0", attach.attach(R0, o.device(), "/dev/nbd0").device());
        EngineException e = assertThrows(EngineException.class, () -> attach.attach(R0, o.device(), "/dev/nbd1"));
        assertEquals(EngineException.Code.STATE, e.code());
        assertEquals(runs, commands.size());
    }

    @Test
    void aDeviceAttachedByAnEarlierDaemonIsFoundAgain() throws Exception {
        nbdModule(4);
        connect("/dev/nbd1", 9, "nbd-client", "-N", "r1", "-b", "4096", "127.0.0.1", "10809", "/dev/nbd1");
        connect("/dev/nbd2", 10, "nbd-client", "-N", "r0", "-b", "4096", "-t", "60", "-persist", "-nonetlink",
                "127.0.0.1", "10809", "/dev/nbd2");
        NbdAttach.Outcome o = attach.attach(R0, null, null);
        assertEquals("/dev/nbd2", o.device());
        assertTrue(o.message().contains("earlier run"), o.message());
        assertTrue(commands.isEmpty());
        assertEquals("/dev/nbd2", attach.detach(R0, null, false).message().replaceAll(".* detached ", ""));
    }

    @Test
    void commandLinesOfOtherClientsDoNotMatch() {
        NbdAttach.Target t = R0;
        assertTrue(NbdAttach.isClientOf(List.of("nbd-client", "-N", "r0", "127.0.0.1", "/dev/nbd0"), t, "/dev/nbd0"));
        assertTrue(NbdAttach.isClientOf(List.of("/usr/sbin/nbd-client", "--name", "r0", "127.0.0.1", "10809",
                "/dev/nbd0"), t, "/dev/nbd0"));
        assertFalse(NbdAttach.isClientOf(List.of("nbd-client", "-N", "r0", "127.0.0.1", "10810", "/dev/nbd0"), t,
                "/dev/nbd0"));
        assertFalse(NbdAttach.isClientOf(List.of("nbd-client", "-N", "r0", "10.0.0.1", "/dev/nbd0"), t, "/dev/nbd0"));
        assertFalse(NbdAttach.isClientOf(List.of("nbd-client", "-N", "r00", "127.0.0.1", "/dev/nbd0"), t,
                "/dev/nbd0"));
        assertFalse(NbdAttach.isClientOf(List.of("nbd-client", "-N", "r0", "127.0.0.1", "/dev/nbd1"), t, "/dev/nbd0"));
        assertFalse(NbdAttach.isClientOf(List.of("qemu-nbd", "-N", "r0", "127.0.0.1", "/dev/nbd0"), t, "/dev/nbd0"));
        assertFalse(NbdAttach.isClientOf(List.of(), t, "/dev/nbd0"));
    }

    @Test
    void detachRunsNbdClientDashDAndWaitsForTheKernel() throws Exception {
        NbdAttach.Outcome a = attach.attach(R0, null, null);
        commands.clear();
        NbdAttach.Outcome d = attach.detach(R0, a.device(), false);
        assertNull(d.device());
        assertEquals("r0 on alpha: detached /dev/nbd0", d.message());
        assertEquals(List.of("-d", "/dev/nbd0"), commands.get(0).subList(1, 3));
        assertTrue(attach.free("/dev/nbd0"));
        assertEquals("r0 on alpha: not attached", attach.detach(R0, null, false).message());
    }

    @Test
    void detachRefusesAMountedSwappedOrHeldDeviceUnlessTheDaemonIsStopping() throws Exception {
        NbdAttach.Outcome a = attach.attach(R0, null, null);
        Files.writeString(proc.resolve("mounts"), "/dev/vda1 / ext4 rw 0 0\n/dev/nbd0 /mnt/my\\040data ext4 rw 0 0\n");
        commands.clear();
        EngineException e = assertThrows(EngineException.class, () -> attach.detach(R0, a.device(), false));
        assertEquals(EngineException.Code.IN_USE, e.code());
        assertEquals("r0 on alpha: /dev/nbd0 is in use: /dev/nbd0 is mounted on /mnt/my data; stop using it first",
                e.getMessage());
        Files.writeString(proc.resolve("mounts"), "/dev/nbd0p1 /mnt ext4 rw 0 0\n");
        assertTrue(attach.inUse("/dev/nbd0").contains("/dev/nbd0p1 is mounted on /mnt"));
        Files.writeString(proc.resolve("mounts"), "/dev/nbd01 /mnt ext4 rw 0 0\n");
        assertNull(attach.inUse("/dev/nbd0"));
        Files.writeString(proc.resolve("swaps"), "Filename Type\n/dev/nbd0 partition 1 0 -2\n");
        assertEquals("/dev/nbd0 is swap space", attach.inUse("/dev/nbd0"));
        Files.writeString(proc.resolve("swaps"), "");
        Files.createDirectories(sys.resolve("nbd0/holders/dm-0"));
        assertEquals("held by dm-0", attach.inUse("/dev/nbd0"));
        assertTrue(commands.isEmpty());

        NbdAttach.Outcome d = attach.detach(R0, a.device(), true);
        assertNull(d.device());
        assertEquals(1, commands.size());
    }

    @Test
    void aDeviceStillOpenAfterTheDisconnectDoesNotHoldTheDaemonsStopUp() throws Exception {
        NbdAttach.Outcome a = attach.attach(R0, null, null);
        Files.writeString(proc.resolve("mounts"), "/dev/nbd0 /mnt ext4 rw 0 0\n");
        // the kernel keeps pid and size while the device is open; the nbd-client daemon exits
        tools = cmd -> {
            try (var s = Files.walk(proc.resolve("4242"))) {
                s.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
            return new NbdAttach.Result(0, "");
        };
        long t0 = System.nanoTime();
        NbdAttach.Outcome d = attach.detach(R0, a.device(), true);
        assertNull(d.device());
        assertTrue(System.nanoTime() - t0 < 400_000_000L, "waited for the kernel to close the device");
        assertTrue(attach.connected("/dev/nbd0"));
    }

    @Test
    void aDeviceTheKernelAlreadyDroppedIsForgotten() throws Exception {
        nbdModule(2);
        NbdAttach.Outcome d = attach.detach(R0, "/dev/nbd1", false);
        assertNull(d.device());
        assertEquals("r0 on alpha: /dev/nbd1 was no longer connected; forgot it", d.message());
        assertTrue(commands.isEmpty());
        // and attach does not trust a stale record either
        assertEquals("/dev/nbd0", attach.attach(R0, "/dev/nbd1", null).device());
    }

    @Test
    void aFailingDetachSaysWhatNbdClientSaid() throws Exception {
        NbdAttach.Outcome a = attach.attach(R0, null, null);
        tools = cmd -> new NbdAttach.Result(1, "Error: Failed to disconnect device, check dmsg\nExiting.\n");
        EngineException e = assertThrows(EngineException.class, () -> attach.detach(R0, a.device(), false));
        assertEquals(EngineException.Code.IO, e.code());
        assertEquals("r0 on alpha: detaching /dev/nbd0 failed: nbd-client -d exited 1: Error: Failed to disconnect"
                + " device, check dmsg", e.getMessage());
    }

    @Test
    void aFailingModprobeIsReported() {
        tools = cmd -> new NbdAttach.Result(1, "modprobe: FATAL: Module nbd not found in directory /lib/modules/6.18\n");
        EngineException e = assertThrows(EngineException.class, () -> attach.attach(R0, null, null));
        assertEquals(EngineException.Code.IO, e.code());
        assertTrue(e.getMessage().startsWith("r0 on alpha: cannot attach: the kernel has no NBD devices and modprobe"
                + " nbd failed (exit 1): modprobe: FATAL: Module nbd not found"), e.getMessage());
    }

    @Test
    void aMissingModprobeIsReported() {
        attach = new NbdAttach(sys, proc, (cmd, timeout) -> {
            throw new IOException("Cannot run program \"modprobe\": error=2, No such file or directory");
        }, Duration.ofMillis(500));
        EngineException e = assertThrows(EngineException.class, () -> attach.attach(R0, null, null));
        assertEquals(EngineException.Code.IO, e.code());
        assertEquals("r0 on alpha: cannot attach: the kernel has no NBD devices (no " + sys.resolve("nbd0")
                + ") and modprobe nbd cannot run: Cannot run program \"modprobe\": error=2, No such file or directory",
                e.getMessage());
    }

    @Test
    void execCollectsOutputAndExitStatusAndKillsAHungCommand() throws Exception {
        NbdAttach.Result r = NbdAttach.exec(List.of("sh", "-c", "echo out; echo err >&2; exit 3"),
                Duration.ofSeconds(10));
        assertEquals(3, r.exit());
        assertTrue(r.output().contains("out") && r.output().contains("err"), r.output());
        // a forked daemon that closes its inherited output does not hold the caller up
        long t0 = System.nanoTime();
        NbdAttach.Result d = NbdAttach.exec(List.of("sh", "-c", "(exec >/dev/null 2>&1; sleep 5) & echo parent"),
                Duration.ofSeconds(10));
        assertEquals(0, d.exit());
        assertTrue((System.nanoTime() - t0) < 4_000_000_000L, "waited for the daemon");
        NbdAttach.Result hung = NbdAttach.exec(List.of("sleep", "30"), Duration.ofMillis(300));
        assertEquals(-1, hung.exit());
        assertTrue(hung.output().contains("killed"), hung.output());
        assertThrows(IOException.class, () -> NbdAttach.exec(List.of("/nonexistent/nbd-client"), Duration.ofSeconds(1)));
    }
}
