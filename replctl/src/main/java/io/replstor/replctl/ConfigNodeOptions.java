package io.replstor.replctl;

import io.replstor.replicator.config.ClusterConfig;
import io.replstor.replicator.config.ClusterConfigException;
import io.replstor.replicator.config.DiskConfig;
import io.replstor.replicator.config.NodeConfig;
import io.replstor.replicator.config.ResourceConfig;
import picocli.CommandLine.Option;

import java.nio.file.Path;

/** The node an offline verb runs as: {@code --config FILE --node NAME}, both required. */
final class ConfigNodeOptions {
    @Option(names = "--config", paramLabel = "FILE", required = true, description = "the cluster configuration file")
    Path config;

    @Option(names = "--node", paramLabel = "NAME", required = true, description = "this node's name in --config")
    String node;

    /** The loaded configuration, this node, a resource and its disk on this node. */
    record Selection(ClusterConfig cluster, NodeConfig node, ResourceConfig resource, DiskConfig disk) {
    }

    Selection select(String resourceName) throws ReplctlException, ClusterConfigException {
        ClusterConfig c = ClusterConfig.load(config);
        NodeConfig n = c.requireNode(node);
        ResourceConfig r = c.resource(resourceName).orElseThrow(() -> ReplctlException.usage(config
                + ": resource '" + resourceName + "' is not defined (resources: "
                + String.join(", ", c.resources().stream().map(ResourceConfig::name).toList()) + ")"));
        DiskConfig d = r.on(node).orElseThrow(() -> ReplctlException.usage(config + ": resource '" + resourceName
                + "' has no [resource.on." + node + "] entry"));
        return new Selection(c, n, r, d);
    }
}
