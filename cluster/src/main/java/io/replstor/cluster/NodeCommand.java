package io.replstor.cluster;

import io.replstor.nbd.Nbd;
import io.replstor.nbd.server.NbdExport;
import io.replstor.nbd.server.NbdServer;
import io.replstor.nbd.server.NbdServerConfig;
import io.replstor.replicator.config.ClusterConfig;
import io.replstor.replicator.config.ClusterConfigException;
import io.replstor.replicator.config.NodeConfig;
import io.replstor.replicator.engine.FaultInjection;
import io.replstor.replicator.engine.MetadataSetup;
import io.replstor.replicator.engine.ReplicationNode;
import io.replstor.replicator.engine.Resource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

/**
 * {@code repld --config FILE --node NAME}: one node of a replicated cluster. Brings its resources up,
 * serves each as an NBD export named after it, answers the admin API; on SIGTERM demotes, tells the
 * peers, closes the metadata cleanly and exits 0.
 */
final class NodeCommand {
    private static final Logger LOG = LoggerFactory.getLogger(NodeCommand.class);
    /** Writes wait for their peers on these threads; more than a disk would need. */
    static final int IO_THREADS = 64;

    private NodeCommand() {
    }

    static int run(Path configFile, String nodeName, boolean up, boolean createMissingDisks, PrintWriter out,
                   PrintWriter err) throws InterruptedException {
        ClusterConfig config;
        try {
            config = ClusterConfig.load(configFile);
        } catch (ClusterConfigException e) {
            err.println("repld: " + e.getMessage());
            return 2;
        }
        NodeConfig self = config.node(nodeName).orElse(null);
        if (self == null) {
            err.println("repld: " + configFile + ": no node named '" + nodeName + "' (nodes: "
                    + String.join(", ", config.nodes().stream().map(NodeConfig::name).toList()) + ")");
            return 2;
        }
        FaultInjection faults;
        try {
            faults = FaultInjection.parse(System.getenv("REPLSTOR_FAULTS"));
        } catch (IllegalArgumentException e) {
            err.println("repld: " + e.getMessage());
            return 2;
        }
        if (createMissingDisks) {
            for (MetadataSetup.Missing m : MetadataSetup.createMissing(config, nodeName)) {
                switch (m.kind()) {
                    case CREATED -> LOG.info("{}", m.message());
                    case SKIPPED -> LOG.warn("{}", m.message());
                    case FAILED -> LOG.error("{}", m.message());
                }
            }
        }
        ReplicationNode node;
        try {
            node = ReplicationNode.start(config, nodeName, faults, Nbd.MAX_PAYLOAD_BYTES);
        } catch (IOException e) {
            err.println("repld: " + e.getMessage());
            return 1;
        }
        List<NbdExport> exports = new ArrayList<>();
        Map<String, Path> paths = new HashMap<>();
        for (Resource r : node.resources()) {
            exports.add(new NbdExport(r.name(), "replicated resource " + r.name() + " on " + self.name(), r.volume(),
                    List.of()));
            paths.put(r.name(), config.resource(r.name()).orElseThrow().on(self.name()).orElseThrow().disk());
        }
        NbdServer server;
        try {
            server = NbdServer.start(NbdServerConfig.of(self.nbd().toSocketAddress(), exports)
                    .withIoThreads(IO_THREADS));
        } catch (IOException e) {
            node.close();
            err.println("repld: node " + self.name() + ": cannot serve NBD on " + self.nbd() + ": " + e.getMessage());
            return 1;
        }
        AdminServer admin;
        try {
            admin = new AdminServer(self.admin(), server, paths, node);
        } catch (IOException e) {
            server.close();
            node.close();
            err.println("repld: " + e.getMessage());
            return 1;
        }
        CountDownLatch stop = new CountDownLatch(1);
        Signals.onTerminate(stop::countDown);
        if (up) {
            node.upAll();
        }
        out.println("replstor node " + self.name() + " (id " + self.id() + ") ready: replication " + self.address()
                + ", NBD " + self.nbd() + ", admin " + self.admin());
        for (Resource r : node.resources()) {
            out.println("  resource " + r.name() + ": " + (r.isUp() ? r.role().drbdName() + "/" + r.disk().drbdName()
                    : "down") + "  nbd://" + self.nbd() + "/" + r.name());
        }
        out.flush();
        stop.await();
        LOG.info("node {}: stopping", self.name());
        NbdAttach.system().detachAll(node); // kernel clients leave first, cleanly (and auto-demote)
        server.close();
        node.close();
        admin.close();
        LOG.info("node {}: stopped", self.name());
        return 0;
    }
}
