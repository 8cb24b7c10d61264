package io.replstor.replctl;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/**
 * {@code replctl events}: the node's state changes as they happen, like {@code drbdsetup events2}.
 * First the current state ({@code exists} lines, ending with {@code exists -}), then one line per
 * change until Ctrl-C or the node closes the stream; {@code --now} stops after the current state.
 */
@Command(name = "events", mixinStandardHelpOptions = true,
        description = "Print the node's current state, then every change as it happens (until Ctrl-C).")
final class EventsCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Mixin
    NodeOptions nodeOptions;

    @Option(names = "--now", description = "print the current state and stop")
    boolean now;

    @Option(names = "--json", description = "print each event as the node's JSON line")
    boolean json;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        Path socket = nodeOptions.socket();
        AdminClient.Response r;
        try {
            r = AdminClient.stream(socket, now ? "/events?now=1" : "/events", AdminClient.STATUS_TIMEOUT_MILLIS,
                    line -> {
                        out.println(json ? line : EventFormat.text(line));
                        out.flush();
                    });
        } catch (AdminClient.AdminException e) {
            throw ReplctlException.unreachable(e.getMessage());
        }
        if (!r.ok()) {
            throw ReplctlException.failed(r.errorMessage(socket));
        }
        return ExitCodes.OK;
    }
}
