package io.replstor.replctl;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.stream.Stream;

/**
 * The daemons of a demo directory, found by their pid files. A pid counts as the demo's only while
 * it is alive and its {@code /proc/PID/cmdline} names repld (or an io.replstor class) and the demo's
 * cluster file, so a reused pid is never signalled. Nothing is ever found or killed by name.
 */
final class DemoProcesses {
    static final long TERM_WAIT_MILLIS = 15_000;
    static final long KILL_WAIT_MILLIS = 5_000;
    /** The environment; tests replace it to point REPLSTOR_REPLD at a stand-in daemon. */
    static volatile Function<String, String> env = System::getenv;

    private DemoProcesses() {
    }

    /** A pid file and what it names. */
    record PidFile(String node, Path file, long pid) {
    }

    /** The pid files of the directory, by node name; unreadable ones have pid -1. */
    static List<PidFile> pidFiles(Path dir) throws IOException {
        List<PidFile> out = new ArrayList<>();
        if (!Files.isDirectory(dir)) {
            return out;
        }
        try (Stream<Path> s = Files.list(dir)) {
            for (Path f : s.filter(p -> p.getFileName().toString().endsWith(".pid")).sorted().toList()) {
                String name = f.getFileName().toString();
                long pid;
                try {
                    pid = Long.parseLong(Files.readString(f).strip());
                } catch (IOException | NumberFormatException e) {
                    pid = -1;
                }
                out.add(new PidFile(name.substring(0, name.length() - ".pid".length()), f, pid));
            }
        }
        return out;
    }

    /** The live process {@code pid}, if its command line is a repld of {@code config}. */
    static Optional<ProcessHandle> demoProcess(long pid, Path config) {
        if (pid <= 0) {
            return Optional.empty();
        }
        Optional<ProcessHandle> h = ProcessHandle.of(pid).filter(ProcessHandle::isAlive);
        if (h.isEmpty()) {
            return h;
        }
        String cmdline = cmdline(pid);
        boolean ours = (cmdline.contains("repld") || cmdline.contains("io.replstor"))
                && cmdline.contains(config.toString());
        return ours ? h : Optional.empty();
    }

    /** /proc/PID/cmdline with NULs as spaces, or "" if it cannot be read. */
    static String cmdline(long pid) {
        try {
            byte[] b = Files.readAllBytes(Path.of("/proc", Long.toString(pid), "cmdline"));
            return new String(b, StandardCharsets.UTF_8).replace('\0', ' ').strip();
        } catch (IOException e) {
            return "";
        }
    }

    /** The demo daemons alive in {@code dir}, as "alpha (pid 123)". */
    static List<String> running(DemoCluster demo) throws IOException {
        List<String> out = new ArrayList<>();
        for (PidFile p : pidFiles(demo.dir)) {
            if (demoProcess(p.pid(), demo.config()).isPresent()) {
                out.add(p.node() + " (pid " + p.pid() + ")");
            }
        }
        return out;
    }

    /**
     * {@code demo down}: SIGTERM every live demo daemon, wait up to 15 s, SIGKILL what is left,
     * remove the pid files. {@code report} gets one line per pid file.
     *
     * @return false if a daemon survived SIGKILL
     */
    static boolean stop(DemoCluster demo, Consumer<String> report) throws IOException {
        record Stopping(PidFile file, ProcessHandle handle) {
        }
        List<Stopping> stopping = new ArrayList<>();
        for (PidFile p : pidFiles(demo.dir)) {
            Optional<ProcessHandle> h = demoProcess(p.pid(), demo.config());
            if (h.isPresent()) {
                h.get().destroy();
                stopping.add(new Stopping(p, h.get()));
            } else {
                if (p.pid() > 0 && ProcessHandle.of(p.pid()).map(ProcessHandle::isAlive).orElse(false)) {
                    report.accept(p.node() + ": pid " + p.pid() + " is not this demo's repld (now: "
                            + abbreviate(cmdline(p.pid())) + "): left alone");
                } else {
                    report.accept(p.node() + ": " + (p.pid() > 0 ? "pid " + p.pid() + " was not running"
                            : p.file() + " holds no pid"));
                }
                Files.deleteIfExists(p.file());
            }
        }
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(TERM_WAIT_MILLIS);
        boolean all = true;
        for (Stopping s : stopping) {
            String what = s.file().node() + " (pid " + s.file().pid() + ")";
            if (waitFor(s.handle(), Math.max(0, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())))) {
                report.accept("stopped " + what);
            } else {
                s.handle().destroyForcibly();
                if (waitFor(s.handle(), KILL_WAIT_MILLIS)) {
                    report.accept("killed " + what + ": it did not stop within " + TERM_WAIT_MILLIS / 1000
                            + " s of SIGTERM");
                } else {
                    report.accept("could not stop " + what + ", not even with SIGKILL");
                    all = false;
                    continue;
                }
            }
            Files.deleteIfExists(s.file().file());
        }
        return all;
    }

    private static boolean waitFor(ProcessHandle h, long millis) {
        try {
            h.onExit().get(millis, TimeUnit.MILLISECONDS);
            return true;
        } catch (TimeoutException e) {
            return !h.isAlive();
        } catch (ExecutionException e) {
            return !h.isAlive();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return !h.isAlive();
        }
    }

    private static String abbreviate(String s) {
        return s.length() > 120 ? s.substring(0, 120) + "..." : s;
    }

    /**
     * The repld launcher: {@code $REPLSTOR_REPLD}, else {@code $REPLSTOR_HOME/bin/repld} (bin/replctl
     * exports REPLSTOR_HOME), else {@code repld} on the PATH.
     */
    static Path locateRepld() throws ReplctlException {
        String explicit = env.apply("REPLSTOR_REPLD");
        if (explicit != null && !explicit.isBlank()) {
            Path p = Path.of(explicit);
            if (!Files.isExecutable(p)) {
                throw ReplctlException.usage("REPLSTOR_REPLD=" + explicit + " is not an executable file");
            }
            return p;
        }
        String home = env.apply("REPLSTOR_HOME");
        if (home != null && !home.isBlank()) {
            Path p = Path.of(home, "bin", "repld");
            if (Files.isExecutable(p)) {
                return p;
            }
        }
        String path = env.apply("PATH");
        if (path != null) {
            for (String d : path.split(":")) {
                if (!d.isEmpty()) {
                    Path p = Path.of(d, "repld");
                    if (Files.isExecutable(p) && !Files.isDirectory(p)) {
                        return p;
                    }
                }
            }
        }
        throw ReplctlException.usage("cannot find repld: set REPLSTOR_REPLD to its launcher, run replctl from"
                + " bin/replctl next to bin/repld, or put repld on the PATH");
    }
}
