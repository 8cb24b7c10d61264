package io.replstor.replctl;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code replctl status}: what a node serves, with its counters. */
@Command(name = "status", mixinStandardHelpOptions = true, description = "Show a node's exports and counters.",
        exitCodeListHeading = "%nExit codes:%n",
        exitCodeList = {"0:the node answered", "1:the node could not be reached or answered with an error"})
final class StatusCommand implements Callable<Integer> {
    static final String DEFAULT_ADMIN = "/run/replstor/admin.sock";

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--admin", paramLabel = "SOCKET", description = "the node's admin socket (default "
            + DEFAULT_ADMIN + ")", defaultValue = DEFAULT_ADMIN)
    Path admin;

    @Option(names = "--json", description = "print the node's JSON status as is")
    boolean json;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        AdminClient.Response r;
        try {
            r = AdminClient.get(admin, "/status", 10_000);
        } catch (AdminClient.AdminException e) {
            err.println("replctl: " + e.getMessage());
            return 1;
        }
        if (r.status() != 200) {
            err.println("replctl: " + admin + " answered " + r.status() + ": " + r.body().strip());
            return 1;
        }
        if (json) {
            out.print(r.body());
            out.flush();
            return 0;
        }
        JsonNode s = new ObjectMapper().readTree(r.body());
        out.printf("replstor %s  pid %d  up %ds  nbd %s (tls %s)  %d connection(s)%n", s.path("version").asText(),
                s.path("pid").asLong(), s.path("uptime_seconds").asLong(), s.path("nbd").path("listen").asText(),
                s.path("nbd").path("tls").asText(), s.path("nbd").path("connections").asInt());
        out.printf("%-16s %10s %-4s %5s %10s %10s %10s %6s  %s%n", "EXPORT", "SIZE", "MODE", "CONNS", "REQUESTS",
                "READ", "WRITTEN", "ERRORS", "PATH");
        for (JsonNode e : s.path("exports")) {
            out.printf("%-16s %10s %-4s %5d %10d %10s %10s %6d  %s%n", e.path("name").asText(),
                    human(e.path("size_bytes").asLong()), e.path("readonly").asBoolean() ? "ro" : "rw",
                    e.path("connections").asInt(), e.path("requests").asLong(), human(e.path("bytes_read").asLong()),
                    human(e.path("bytes_written").asLong()), e.path("errors").asLong(), e.path("path").asText());
        }
        out.flush();
        return 0;
    }

    static String human(long bytes) {
        String[] units = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
        double v = bytes;
        int i = 0;
        while (v >= 1024 && i < units.length - 1) {
            v /= 1024;
            i++;
        }
        return i == 0 ? bytes + "B" : String.format("%.1f%s", v, units[i]);
    }
}
