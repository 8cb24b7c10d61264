package io.replstor.replctl;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The replstor admin CLI. Every verb talks to a node's admin API. */
@Command(name = "replctl", mixinStandardHelpOptions = true, versionProvider = Version.class,
        description = "Administer replstor nodes.",
        subcommands = {StatusCommand.class},
        exitCodeListHeading = "%nExit codes:%n",
        exitCodeList = {"0:success", "1:the node answered with an error or could not be reached",
                "2:bad command line"})
public final class Replctl implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "missing command (try: replctl --help)");
    }

    public static void main(String[] args) {
        System.exit(new CommandLine(new Replctl()).execute(args));
    }
}
