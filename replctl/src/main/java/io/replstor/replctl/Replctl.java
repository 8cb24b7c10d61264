package io.replstor.replctl;

import io.replstor.replicator.config.ClusterConfigException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.io.PrintWriter;
import java.util.LinkedHashMap;
import java.util.Map;

/** The replstor admin CLI: node verbs over a node's admin API, offline metadata verbs, and a local demo cluster. */
@Command(name = "replctl", mixinStandardHelpOptions = true, versionProvider = Version.class,
        description = "Administer replstor nodes.",
        subcommands = {StatusCommand.class, EventsCommand.class, ClusterCommand.class,
                ResourceVerbs.Up.class, ResourceVerbs.Down.class, ResourceVerbs.Primary.class,
                ResourceVerbs.Secondary.class, ResourceVerbs.Connect.class, ResourceVerbs.Disconnect.class,
                ResourceVerbs.Invalidate.class, ResourceVerbs.InvalidateRemote.class, ResourceVerbs.PauseSync.class,
                ResourceVerbs.ResumeSync.class, ResourceVerbs.NewCurrentUuid.class,
                DeviceVerbs.Attach.class, DeviceVerbs.Detach.class,
                MetadataCommands.CreateMd.class, MetadataCommands.DumpMd.class,
                DemoCommand.class, CommandLine.HelpCommand.class})
public final class Replctl implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "missing command");
    }

    /** The command line with replctl's exit-code mapping; {@code main} and the tests use it. */
    static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new Replctl());
        cl.setExitCodeExceptionMapper(Replctl::exitCode);
        cl.setExecutionExceptionHandler(Replctl::handle);
        cl.setParameterExceptionHandler(Replctl::usage);
        cl.setCaseInsensitiveEnumValuesAllowed(true);
        addExitCodes(cl);
        return cl;
    }

    /** Every command's --help lists the same exit codes. */
    private static void addExitCodes(CommandLine cl) {
        Map<String, String> codes = new LinkedHashMap<>();
        for (String line : ExitCodes.HELP) {
            int colon = line.indexOf(':');
            codes.put(line.substring(0, colon), line.substring(colon + 1));
        }
        cl.getCommandSpec().usageMessage().exitCodeListHeading("%nExit codes:%n").exitCodeList(codes);
        cl.getSubcommands().values().stream().distinct().forEach(Replctl::addExitCodes);
    }

    /** A bad command line: the problem and where to read more, not the whole usage. Exit code 2. */
    private static int usage(CommandLine.ParameterException e, String[] args) {
        CommandLine c = e.getCommandLine();
        PrintWriter err = c.getErr();
        err.println("replctl: " + e.getMessage());
        CommandLine.UnmatchedArgumentException.printSuggestions(e, err);
        err.println("Try '" + c.getCommandSpec().qualifiedName() + " --help' for more information.");
        err.flush();
        return ExitCodes.USAGE;
    }

    /** Prints {@code replctl: MESSAGE} and maps the exception to an exit code (see {@link ExitCodes}). */
    private static int handle(Exception e, CommandLine cl, CommandLine.ParseResult parsed) {
        PrintWriter err = cl.getErr();
        if (e instanceof ReplctlException r) {
            err.println("replctl: " + r.getMessage());
        } else if (e instanceof ClusterConfigException c) {
            for (String p : c.problems()) {
                err.println("replctl: " + p);
            }
        } else if (e instanceof CommandLine.ParameterException p) {
            err.println("replctl: " + p.getMessage());
        } else {
            err.println("replctl: " + (e.getMessage() == null ? e.toString() : e.getMessage()));
        }
        err.flush();
        return exitCode(e);
    }

    private static int exitCode(Throwable e) {
        if (e instanceof ReplctlException r) {
            return r.exitCode();
        }
        if (e instanceof ClusterConfigException || e instanceof CommandLine.ParameterException) {
            return ExitCodes.USAGE;
        }
        return ExitCodes.FAILED;
    }

    public static void main(String[] args) {
        System.exit(commandLine().execute(args));
    }
}
