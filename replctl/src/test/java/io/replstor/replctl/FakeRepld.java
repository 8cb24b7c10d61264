package io.replstor.replctl;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.replstor.replicator.config.ClusterConfig;
import io.replstor.replicator.config.NodeConfig;
import io.replstor.replicator.meta.GenerationUuids;
import io.replstor.replicator.meta.MetaDisk;
import io.replstor.replicator.meta.Metadata;
import io.replstor.replicator.meta.MetadataDump;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A stand-in for {@code repld --config FILE --node NAME} in the demo tests (the daemon is written
 * elsewhere): checks the node's metadata exists, then answers the admin API as a connected node.
 * {@code DIR/cleared} (written on new-current-uuid) makes every disk UpToDate; {@code DIR/fail-NAME}
 * makes node NAME exit 3 at once.
 */
public final class FakeRepld {
    private static final ObjectMapper JSON = new ObjectMapper();

    private FakeRepld() {
    }

    public static void main(String[] args) throws Exception {
        Path config = Path.of(args[1]);
        String name = args[3];
        Path dir = config.getParent();
        if (Files.exists(dir.resolve("fail-" + name))) {
            System.out.println("boom: simulated failure of " + name);
            System.exit(3);
        }
        ClusterConfig c = ClusterConfig.load(config);
        NodeConfig me = c.requireNode(name);
        if (me.isWitness()) {
            witness(c, me);
            return;
        }
        Path disk = c.resource("r0").orElseThrow().on(name).orElseThrow().disk();
        try (Metadata md = MetadataDump.open(MetaDisk.openInternal("r0", disk, true))) {
            System.out.println("metadata of r0: node " + md.geometry().nodeId() + ", current uuid "
                    + GenerationUuids.format(md.state().uuids().current()));
        }
        String[] role = {"Secondary"};
        Path cleared = dir.resolve("cleared");
        Files.deleteIfExists(me.admin());
        FakeNode node = new FakeNode(me.admin(), r -> {
            System.out.println(r.method() + " " + r.uri() + " " + r.body());
            System.out.flush();
            if (r.uri().equals("/status")) {
                String disk1 = Files.exists(cleared) ? "UpToDate" : "Inconsistent";
                ObjectNode s = JSON.createObjectNode().put("node", name).put("pid", ProcessHandle.current().pid());
                ObjectNode res = s.putArray("resources").addObject().put("name", "r0").put("up", true)
                        .put("role", role[0]).put("disk", disk1);
                res.putNull("error");
                ArrayNode peers = res.putArray("peers");
                for (NodeConfig p : c.peersOf(name)) {
                    peers.addObject().put("peer", p.name()).put("node_id", p.id()).put("connection", "Connected")
                            .put("replication", "Established").put("peer_role", "Secondary").put("peer_disk", disk1)
                            .put("out_of_sync_bytes", 0).put("sync_percent", 100.0);
                }
                return FakeNode.ok(s.toString());
            }
            try {
                if (r.uri().equals("/resources/r0/new-current-uuid")) {
                    Files.writeString(cleared, name);
                } else if (r.uri().equals("/resources/r0/primary")) {
                    role[0] = "Primary";
                } else {
                    return FakeNode.error(404, "no such path " + r.uri(), "not-found");
                }
            } catch (java.io.IOException e) {
                return FakeNode.error(500, e.toString(), "io");
            }
            return FakeNode.ok("{\"message\":\"r0: " + r.uri().substring(r.uri().lastIndexOf('/') + 1) + " on "
                    + name + "\"}");
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
            } catch (Exception e) {
                // exiting anyway
            }
        }));
        System.out.println("fake repld " + name + " up");
        System.out.flush();
        Thread.sleep(Long.MAX_VALUE);
    }

    /** A witness: no disk; answers /status and /cluster. */
    private static void witness(ClusterConfig c, NodeConfig me) throws Exception {
        Files.deleteIfExists(me.admin());
        FakeNode node = new FakeNode(me.admin(), r -> {
            System.out.println(r.method() + " " + r.uri() + " " + r.body());
            System.out.flush();
            if (r.uri().equals("/status")) {
                return FakeNode.ok(JSON.createObjectNode().put("node", me.name()).put("role", "witness")
                        .put("pid", ProcessHandle.current().pid()).toString());
            }
            if (r.uri().equals("/cluster")) {
                ObjectNode s = JSON.createObjectNode().put("cluster", c.name()).put("stale", false);
                s.putObject("quorum").put("present", true).put("why", "fake");
                ArrayNode members = s.putArray("members");
                for (NodeConfig n : c.nodes()) {
                    members.addObject().put("name", n.name()).put("role", n.role().configName()).put("reachable", true);
                }
                s.putArray("resources");
                return FakeNode.ok(s.toString());
            }
            return FakeNode.error(404, "no such path " + r.uri(), "not-found");
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
            } catch (Exception e) {
                // exiting anyway
            }
        }));
        System.out.println("fake repld " + me.name() + " (witness) up");
        System.out.flush();
        Thread.sleep(Long.MAX_VALUE);
    }
}
