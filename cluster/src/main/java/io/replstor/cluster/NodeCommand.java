package io.replstor.cluster;

import io.replstor.cluster.store.ClusterStore;
import io.replstor.nbd.Nbd;
import io.replstor.nbd.server.NbdExport;
import io.replstor.nbd.server.NbdServer;
import io.replstor.nbd.server.NbdServerConfig;
import io.replstor.replicator.config.ClusterConfig;
import io.replstor.replicator.config.ClusterConfigException;
import io.replstor.replicator.authority.RoleAuthority;
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
 * {@code repld --config FILE --node NAME}: one node of a replicated cluster. Starts its member of the
 * cluster store (unless the file says {@code quorum = "off"}), brings its resources up, serves each as
 * an NBD export named after it, answers the admin API; on SIGTERM demotes, tells the peers, closes the
 * metadata cleanly and exits 0. A witness runs only its store member and the admin API.
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
        RoleAuthority authority;
        ClusterStore store = null;
        if (config.hasStore()) {
            try {
                store = ClusterStore.start(config, nodeName);
            } catch (IOException | RuntimeException e) {
                err.println("repld: node " + nodeName + ": cannot start its member of the cluster store: "
                        + e.getMessage());
                return 1;
            }
            authority = store;
        } else {
            authority = ReplicationNode.localAuthority(config);
            LOG.warn("node {}: quorum = \"off\": each node decides its role alone; split brain is possible and"
                    + " only detected", nodeName);
        }
        if (self.isWitness()) {
            return runWitness(config, self, store, out, err);
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
            node = ReplicationNode.start(config, nodeName, faults, Nbd.MAX_PAYLOAD_BYTES, authority);
        } catch (IOException e) {
            err.println("repld: " + e.getMessage());
            authority.close();
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
            authority.close();
            err.println("repld: node " + self.name() + ": cannot serve NBD on " + self.nbd() + ": " + e.getMessage());
            return 1;
        }
        AdminServer admin;
        try {
            admin = new AdminServer(self.admin(), server, paths, node, clusterStatus(config, store, node));
        } catch (IOException e) {
            server.close();
            node.close();
            authority.close();
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
        node.beginShutdown(); // I/O waiting for the cluster store fails now instead of holding the stop
        server.close();
        node.close();
        admin.close();
        authority.close();
        LOG.info("node {}: stopped", self.name());
        return 0;
    }

    /** A witness: its member of the cluster store and the admin API, until SIGTERM. */
    private static int runWitness(ClusterConfig config, NodeConfig self, ClusterStore store, PrintWriter out,
                                  PrintWriter err) throws InterruptedException {
        AdminServer admin;
        try {
            admin = AdminServer.witness(self, config, clusterStatus(config, store, null));
        } catch (IOException e) {
            store.close();
            err.println("repld: " + e.getMessage());
            return 1;
        }
        CountDownLatch stop = new CountDownLatch(1);
        Signals.onTerminate(stop::countDown);
        out.println("replstor witness " + self.name() + " (id " + self.id() + ") ready: cluster store " + self.raft()
                + ", admin " + self.admin());
        out.flush();
        stop.await();
        LOG.info("witness {}: stopping", self.name());
        admin.close();
        store.close();
        LOG.info("witness {}: stopped", self.name());
        return 0;
    }

    /** What {@code GET /cluster} answers: the store's status, or a local summary without a store. */
    private static java.util.function.Supplier<java.util.concurrent.CompletableFuture<Map<String, Object>>>
            clusterStatus(ClusterConfig config, ClusterStore store, ReplicationNode node) {
        if (store != null) {
            return store::status;
        }
        return () -> java.util.concurrent.CompletableFuture.completedFuture(LocalClusterStatus.of(config, node));
    }
}
