package io.replstor.replctl;

import io.replstor.replicator.config.ClusterConfig;
import io.replstor.replicator.config.ClusterConfigException;
import io.replstor.replicator.config.NodeConfig;
import picocli.CommandLine.Option;

import java.nio.file.Path;

/**
 * Which node a verb talks to: {@code --admin SOCKET}, or {@code --config FILE --node NAME} (the
 * node's {@code admin} entry in the cluster file), else {@value #DEFAULT_ADMIN}.
 */
final class NodeOptions {
    static final String DEFAULT_ADMIN = "/run/replstor/admin.sock";

    @Option(names = "--admin", paramLabel = "SOCKET",
            description = "the node's admin socket (default " + DEFAULT_ADMIN + ")")
    Path admin;

    @Option(names = "--config", paramLabel = "FILE",
            description = "the cluster configuration file; with --node, talk to that node's admin socket")
    Path config;

    @Option(names = "--node", paramLabel = "NAME", description = "the node of --config to talk to")
    String node;

    /** The admin socket to use. Bad combinations and configuration problems are exit code 2. */
    Path socket() throws ReplctlException, ClusterConfigException {
        if (admin != null && (config != null || node != null)) {
            throw ReplctlException.usage("give either --admin SOCKET or --config FILE --node NAME, not both");
        }
        if (admin != null) {
            return admin;
        }
        if (config == null && node == null) {
            return Path.of(DEFAULT_ADMIN);
        }
        return nodeConfig().admin();
    }

    /** The node's entry, when selected by --config and --node. */
    NodeConfig nodeConfig() throws ReplctlException, ClusterConfigException {
        if (config == null || node == null) {
            throw ReplctlException.usage(config == null ? "--node needs --config FILE" : "--config needs --node NAME");
        }
        return ClusterConfig.load(config).requireNode(node);
    }

    /** "alpha" or the socket, for messages. */
    String describe() {
        return node != null ? "node " + node : "the node at " + (admin == null ? DEFAULT_ADMIN : admin);
    }
}
