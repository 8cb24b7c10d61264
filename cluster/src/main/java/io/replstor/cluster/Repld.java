package io.replstor.cluster;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The replstor node daemon. {@code repld --config FILE --node NAME} runs a node of a replicated
 * cluster; {@code repld serve} runs an NBD server over plain files or block devices.
 */
@Command(name = "repld", mixinStandardHelpOptions = true, versionProvider = Version.class,
        description = "The replstor node daemon.",
        subcommands = {ServeCommand.class},
        exitCodeListHeading = "%nExit codes:%n",
        exitCodeList = {"0:stopped cleanly", "1:failed at run time", "2:bad command line or configuration"})
public final class Repld implements java.util.concurrent.Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @CommandLine.Option(names = "--config", paramLabel = "FILE", description = "the cluster configuration file (TOML)")
    java.nio.file.Path config;

    @CommandLine.Option(names = "--node", paramLabel = "NAME", description = "this node's name in the cluster file")
    String node;

    @CommandLine.Option(names = "--no-up", description = "leave the resources down (bring them up with replctl up)")
    boolean noUp;

    @CommandLine.Option(names = "--create-missing-disks", description = {
        "first create each resource of this node whose backing file does not exist yet: a sparse file with"
                + " fresh metadata, as replctl create-md would (a new node's first start).",
        "An existing file or device is never touched."})
    boolean createMissingDisks;

    @Override
    public Integer call() throws Exception {
        if (config == null || node == null) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "give --config FILE --node NAME to run a cluster node, or a command (try: repld --help)");
        }
        return NodeCommand.run(config, node, !noUp, createMissingDisks, spec.commandLine().getOut(),
                spec.commandLine().getErr());
    }

    public static void main(String[] args) {
        int rc = new CommandLine(new Repld()).execute(args);
        if (rc != 0) {
            System.exit(rc);
        }
    }
}
