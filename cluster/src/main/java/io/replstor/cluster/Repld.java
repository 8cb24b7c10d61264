package io.replstor.cluster;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The replstor node daemon. {@code repld serve} runs an NBD server over files or block devices.
 */
@Command(name = "repld", mixinStandardHelpOptions = true, versionProvider = Version.class,
        description = "The replstor node daemon.",
        subcommands = {ServeCommand.class},
        exitCodeListHeading = "%nExit codes:%n",
        exitCodeList = {"0:stopped cleanly", "1:failed at run time", "2:bad command line or configuration"})
public final class Repld implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "missing command (try: repld serve --help)");
    }

    public static void main(String[] args) {
        int rc = new CommandLine(new Repld()).execute(args);
        if (rc != 0) {
            System.exit(rc);
        }
    }
}
