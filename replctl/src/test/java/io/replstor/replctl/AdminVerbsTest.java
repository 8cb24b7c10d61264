package io.replstor.replctl;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The node verbs, status and events against a fake admin API on a real Unix socket. */
class AdminVerbsTest extends FakeNodeTestBase {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** A node with r0 Primary: beta resyncing from it, gamma disconnected after a split brain; r1 failed to attach. */
    static final String STATUS = """
            {"version": "0.1.0-SNAPSHOT", "pid": 4242, "uptime_seconds": 12,
             "node": "alpha", "node_id": 0, "config": "/etc/replstor/cluster.toml",
             "nbd": {"listen": "127.0.0.1:10809", "connections": 1},
             "resources": [{
               "name": "r0", "up": true, "error": null, "role": "Primary", "disk": "UpToDate",
               "size_bytes": 1073741824, "device": null,
               "nbd": {"uri": "nbd://127.0.0.1:10809/r0", "clients": 1}, "current_uuid": "5F3A000000000001",
               "peers": [{
                 "peer": "beta", "node_id": 1, "connection": "Connected", "replication": "SyncSource",
                 "peer_role": "Secondary", "peer_disk": "Inconsistent", "protocol": "C",
                 "out_of_sync_bytes": 1288490188, "sync_percent": 45.1, "sync_rate_bytes_per_second": 12897484,
                 "sync_eta_seconds": 12, "resync_paused": false, "last_error": null,
                 "sent_bytes": 0, "received_bytes": 0, "resync_sent_bytes": 0, "resync_received_bytes": 0
               }, {
                 "peer": "gamma", "node_id": 2, "connection": "StandAlone", "replication": "Off",
                 "peer_role": "Unknown", "peer_disk": "DUnknown", "protocol": "C",
                 "out_of_sync_bytes": 0, "sync_percent": 100.0, "sync_rate_bytes_per_second": 0,
                 "sync_eta_seconds": null, "resync_paused": false,
                 "last_error": "split brain detected: both sides changed the data",
                 "sent_bytes": 0, "received_bytes": 0, "resync_sent_bytes": 0, "resync_received_bytes": 0
               }]
             }, {
               "name": "r1", "up": false,
               "error": "block 262150 (superblock copy A) at offset 1073766400 is corrupt",
               "role": "Secondary", "disk": "Diskless", "size_bytes": 1048576, "device": null,
               "nbd": {"uri": "nbd://127.0.0.1:10809/r1", "clients": 0}, "current_uuid": "0", "peers": []
             }]}
            """;

    /** What plain {@code repld serve} answers. */
    static final String SERVE_STATUS = """
            {"version":"0.1.0-SNAPSHOT","pid":7,"uptime_seconds":3,
             "nbd":{"listen":"127.0.0.1:10809","tls":"off","connections":0},
             "exports":[{"name":"vm1","path":"/srv/vm1.img","size_bytes":21474836480,"readonly":false,
               "description":"vm1","connections":0,"requests":5,"bytes_read":4096,"bytes_written":0,"errors":0,
               "protocol_errors":0}]}
            """;

    private void answerVerbs() {
        node.route(r -> {
            String[] parts = r.uri().split("/");
            return FakeNode.ok("{\"resource\":\"" + parts[2] + "\",\"verb\":\"" + parts[3] + "\",\"message\":\""
                    + parts[2] + ": " + parts[3] + " done on alpha\"}");
        });
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "up r0                                   | /resources/r0/up                | {}",
        "down r0                                 | /resources/r0/down              | {}",
        "primary r0                              | /resources/r0/primary           | {}",
        "primary r0 --force                      | /resources/r0/primary           | {\"force\":true}",
        "primary r0 --force --reason disk-died   | /resources/r0/primary           | {\"force\":true,\"reason\":\"disk-died\"}",
        "secondary r0                            | /resources/r0/secondary         | {}",
        "connect r0                              | /resources/r0/connect           | {}",
        "connect r0 --discard-my-data --peer beta | /resources/r0/connect          | {\"discard_my_data\":true,\"peer\":\"beta\"}",
        "disconnect r0                           | /resources/r0/disconnect        | {}",
        "disconnect r0 --peer beta               | /resources/r0/disconnect        | {\"peer\":\"beta\"}",
        "invalidate r0                           | /resources/r0/invalidate        | {}",
        "invalidate-remote r0 --peer beta        | /resources/r0/invalidate-remote | {\"peer\":\"beta\"}",
        "pause-sync r0 --peer beta               | /resources/r0/pause-sync        | {\"peer\":\"beta\"}",
        "resume-sync r0                          | /resources/r0/resume-sync       | {}",
        "new-current-uuid r0                     | /resources/r0/new-current-uuid  | {}",
        "new-current-uuid r0 --clear-bitmap      | /resources/r0/new-current-uuid  | {\"clear_bitmap\":true}"})
    void everyVerbPostsItsOptions(String command, String path, String body) {
        answerVerbs();
        Cli.Result res = run(command.strip().split("\\s+"));
        assertEquals(0, res.exit(), res::toString);
        assertEquals(1, node.requests.size());
        FakeNode.Request req = node.last();
        assertEquals("POST", req.method());
        assertEquals(path, req.uri());
        assertEquals(body, req.body());
        assertEquals("application/json", req.contentType());
        String verb = path.substring(path.lastIndexOf('/') + 1);
        assertEquals("r0: " + verb + " done on alpha\n", res.out());
        assertEquals("", res.err());
    }

    @Test
    void jsonPrintsTheWholeAnswer() throws Exception {
        answerVerbs();
        Cli.Result res = run("primary", "r0", "--json");
        assertEquals(0, res.exit(), res::toString);
        JsonNode j = JSON.readTree(res.out());
        assertEquals("primary", j.get("verb").asText());
        assertEquals("r0: primary done on alpha", j.get("message").asText());
    }

    @Test
    void selectsTheNodeThroughTheClusterFile() throws Exception {
        answerVerbs();
        Path config = MetadataCommandsTest.writeConfig(tmp, List.of("alpha", "beta"), "4MiB", admin);
        Cli.Result res = Cli.run("secondary", "r0", "--config", config.toString(), "--node", "alpha");
        assertEquals(0, res.exit(), res::toString);
        assertEquals("/resources/r0/secondary", node.last().uri());

        Cli.Result unknown = Cli.run("secondary", "r0", "--config", config.toString(), "--node", "zeta");
        assertEquals(2, unknown.exit(), unknown::toString);
        assertTrue(unknown.err().contains("node 'zeta' is not defined"), unknown::toString);
        Cli.Result half = Cli.run("secondary", "r0", "--config", config.toString());
        assertEquals(2, half.exit(), half::toString);
        assertTrue(half.err().contains("--config needs --node NAME"), half::toString);
    }

    @Test
    void refusalIsExitOneWithTheNodesError() throws Exception {
        node.route(r -> FakeNode.error(409, "r0: alpha cannot become Secondary: 1 NBD client is connected",
                "in-use"));
        Cli.Result res = run("secondary", "r0");
        assertEquals(1, res.exit(), res::toString);
        assertEquals("replctl: r0: alpha cannot become Secondary: 1 NBD client is connected\n", res.err());
        assertEquals("", res.out());

        Cli.Result json = run("secondary", "r0", "--json");
        assertEquals(1, json.exit());
        assertEquals("in-use", JSON.readTree(json.out()).get("code").asText());

        node.route(r -> new FakeNode.Full(405, "only GET is supported\n")); // the plain serve daemon, in text
        Cli.Result text = run("up", "r0");
        assertEquals(1, text.exit());
        assertEquals("replctl: " + admin + " answered 405: only GET is supported\n", text.err());
    }

    @Test
    void unreachableNodeIsExitThree() throws Exception {
        Cli.Result missing = Cli.run("primary", "r0", "--admin", tmp.resolve("nobody.sock").toString());
        assertEquals(3, missing.exit(), missing::toString);
        assertTrue(missing.err().startsWith("replctl: admin socket " + tmp.resolve("nobody.sock")
                + " does not exist"), missing::toString);

        Path notListening = Files.createFile(tmp.resolve("stale.sock"));
        Cli.Result refused = Cli.run("status", "--admin", notListening.toString());
        assertEquals(3, refused.exit(), refused::toString);
        assertTrue(refused.err().contains("cannot connect"), refused::toString);
        Cli.Result events = Cli.run("events", "--admin", notListening.toString());
        assertEquals(3, events.exit(), events::toString);
    }

    @Test
    void badCommandLinesAreExitTwo() {
        for (String[] args : List.of(new String[] {"primary"}, new String[] {"primary", "r0", "--bogus"},
                new String[] {"primary", "r/0"}, new String[] {"connect", "r0", "--peer", "a b"},
                new String[] {"frobnicate"}, new String[0],
                new String[] {"status", "--admin", "/x.sock", "--config", "/c.toml", "--node", "a"})) {
            Cli.Result res = Cli.run(args);
            assertEquals(2, res.exit(), () -> String.join(" ", args) + "\n" + res);
            assertTrue(res.err().startsWith("replctl: "), res::toString);
        }
        assertTrue(node.requests.isEmpty());
    }

    @Test
    void helpListsTheExitCodes() {
        for (String[] args : List.of(new String[] {"--help"}, new String[] {"primary", "--help"},
                new String[] {"demo", "down", "--help"})) {
            Cli.Result res = Cli.run(args);
            assertEquals(0, res.exit());
            assertTrue(res.out().contains("Exit codes:"), res::toString);
            assertTrue(res.out().contains("3   the node could not be reached"), res::toString);
        }
    }

    @Test
    void statusHumanFormLikeDrbdadm() {
        node.route(r -> FakeNode.ok(STATUS));
        Cli.Result res = run("status");
        assertEquals(0, res.exit(), res::toString);
        assertEquals("GET", node.last().method());
        assertEquals("/status", node.last().uri());
        assertEquals("""
                r0 role:Primary
                  disk:UpToDate
                  beta role:Secondary connection:Connected
                    replication:SyncSource peer-disk:Inconsistent done:45.10 rate:12.3MiB/s eta:0:12 out-of-sync:1.2GiB
                  gamma connection:StandAlone
                    replication:Off peer-disk:DUnknown
                    last-error:split brain detected: both sides changed the data
                r1 down
                  error:block 262150 (superblock copy A) at offset 1073766400 is corrupt
                """, res.out());
    }

    @Test
    void statusOfOneResource() throws Exception {
        node.route(r -> FakeNode.ok(STATUS));
        Cli.Result res = run("status", "r1");
        assertEquals(0, res.exit(), res::toString);
        assertTrue(res.out().startsWith("r1 down\n"), res::toString);
        assertFalse(res.out().contains("r0"));

        Cli.Result json = run("status", "r0", "--json");
        assertEquals(0, json.exit(), json::toString);
        JsonNode j = JSON.readTree(json.out());
        assertEquals("alpha", j.get("node").asText());
        assertEquals(1, j.get("resources").size());
        assertEquals("r0", j.get("resources").get(0).get("name").asText());

        Cli.Result none = run("status", "r9");
        assertEquals(1, none.exit(), none::toString);
        assertEquals("replctl: node alpha has no resource 'r9' (resources: r0, r1)\n", none.err());
    }

    @Test
    void statusJsonIsTheNodesAnswerAsIs() {
        node.route(r -> FakeNode.ok(STATUS));
        Cli.Result res = run("status", "--json");
        assertEquals(0, res.exit());
        assertEquals(STATUS, res.out());
    }

    @Test
    void statusOfAPlainServeNodeStillWorks() {
        node.route(r -> FakeNode.ok(SERVE_STATUS));
        Cli.Result res = run("status");
        assertEquals(0, res.exit(), res::toString);
        assertTrue(res.out().startsWith("replstor 0.1.0-SNAPSHOT  pid 7  up 3s  nbd 127.0.0.1:10809 (tls off)"
                + "  0 connection(s)\n"), res::toString);
        assertTrue(res.out().contains("vm1                 20.0GiB rw       0          5     4.0KiB"),
                res::toString);
        Cli.Result json = run("status", "--json");
        assertEquals(SERVE_STATUS, json.out());
    }

    @Test
    void statusWhileResyncIsPausedAndAfterItEnded() {
        node.route(r -> FakeNode.ok("""
                {"node":"beta","resources":[{"name":"r0","up":true,"error":null,"role":"Secondary",
                 "disk":"Inconsistent","peers":[{"peer":"alpha","node_id":0,"connection":"Connected",
                 "replication":"PausedSyncT","peer_role":"Primary","peer_disk":"UpToDate",
                 "out_of_sync_bytes":4096,"sync_percent":99.5,"sync_rate_bytes_per_second":0,
                 "sync_eta_seconds":null,"resync_paused":true,"last_error":null}]},
                 {"name":"r1","up":true,"error":null,"role":"Secondary","disk":"UpToDate",
                 "peers":[{"peer":"alpha","node_id":0,"connection":"Connected","replication":"Established",
                 "peer_role":"Primary","peer_disk":"UpToDate","out_of_sync_bytes":0,"sync_percent":100.0,
                 "sync_rate_bytes_per_second":0,"sync_eta_seconds":null,"resync_paused":false,"last_error":null}]}]}
                """));
        Cli.Result res = run("status");
        assertEquals("""
                r0 role:Secondary
                  disk:Inconsistent
                  alpha role:Primary connection:Connected
                    replication:PausedSyncT peer-disk:UpToDate done:99.50 rate:0B/s resync-suspended:user out-of-sync:4.0KiB
                r1 role:Secondary
                  disk:UpToDate
                  alpha role:Primary connection:Connected
                    replication:Established peer-disk:UpToDate
                """, res.out());
    }

    @Test
    void eventsTextForm() {
        assertEquals("change connection name:r0 peer:beta connection:Connected peer-role:Secondary",
                EventFormat.text("{\"time\": \"2026-11-22T01:02:03.456Z\", \"type\": \"change\", \"object\":"
                        + " \"connection\", \"name\": \"r0\", \"peer\": \"beta\", \"connection\": \"Connected\","
                        + " \"peer_role\": \"Secondary\"}"));
        assertEquals("exists resource name:r0 role:Primary disk:UpToDate up:true",
                EventFormat.text("{\"type\":\"exists\",\"time\":\"t\",\"role\":\"Primary\",\"object\":\"resource\","
                        + "\"disk\":\"UpToDate\",\"name\":\"r0\",\"up\":true}"));
        assertEquals("exists peer-device name:r0 peer:beta replication:SyncSource peer-disk:Inconsistent"
                        + " out-of-sync-bytes:1048576 sync-percent:45.1",
                EventFormat.text("{\"type\":\"exists\",\"object\":\"peer-device\",\"name\":\"r0\",\"peer\":\"beta\","
                        + "\"replication\":\"SyncSource\",\"peer_disk\":\"Inconsistent\",\"out_of_sync_bytes\":1048576,"
                        + "\"sync_percent\":45.1}"));
        assertEquals("change connection name:r0 peer:gamma connection:StandAlone"
                        + " last-error:\"split brain detected\"",
                EventFormat.text("{\"type\":\"change\",\"object\":\"connection\",\"name\":\"r0\",\"peer\":\"gamma\","
                        + "\"connection\":\"StandAlone\",\"peer_role\":null,\"last_error\":\"split brain detected\"}"));
        assertEquals("exists -", EventFormat.text("{\"type\": \"exists\", \"object\": \"-\"}"));
        assertEquals("not json", EventFormat.text("not json"));
    }

    @Test
    void eventsNowPrintsTheCurrentStateAndEnds() {
        node.route(r -> new FakeNode.Streamed(out -> {
            out.line("{\"time\":\"t1\",\"type\":\"exists\",\"object\":\"resource\",\"name\":\"r0\",\"role\":\"Primary\","
                    + "\"disk\":\"UpToDate\",\"up\":true}");
            out.raw("{\"time\":\"t2\",\"type\":\"exists\",\"object\":\"connection\",\"name\":\"r0\","); // split line
            out.raw("\"peer\":\"beta\",\"connection\":\"Connected\",\"peer_role\":\"Secondary\"}\n{\"type\":");
            out.raw("\"exists\",\"object\":\"-\"}\n");
        }));
        Cli.Result text = run("events", "--now");
        assertEquals(0, text.exit(), text::toString);
        assertEquals("/events?now=1", node.last().uri());
        assertEquals("""
                exists resource name:r0 role:Primary disk:UpToDate up:true
                exists connection name:r0 peer:beta connection:Connected peer-role:Secondary
                exists -
                """, text.out());

        Cli.Result json = run("events", "--now", "--json");
        assertEquals(0, json.exit(), json::toString);
        String[] lines = json.out().split("\n");
        assertEquals(3, lines.length);
        assertTrue(lines[1].startsWith("{\"time\":\"t2\",\"type\":\"exists\""), json::toString);
    }

    @Test
    void eventsArePrintedAsTheyArrive() throws Exception {
        CountDownLatch firstSeen = new CountDownLatch(1);
        node.route(r -> new FakeNode.Streamed(out -> {
            out.line("{\"type\":\"exists\",\"object\":\"-\"}");
            if (!firstSeen.await(10, TimeUnit.SECONDS)) { // the client must print before the stream goes on
                throw new AssertionError("the first event was not printed while the stream was open");
            }
            Thread.sleep(50);
            out.line("{\"time\":\"t\",\"type\":\"change\",\"object\":\"resource\",\"name\":\"r0\",\"role\":\"Secondary\"}");
            Thread.sleep(50);
        }));
        StringWriter sw = new StringWriter();
        PrintWriter out = new PrintWriter(sw, true);
        CompletableFuture<Integer> exit = CompletableFuture.supplyAsync(() ->
                Cli.run(out, new PrintWriter(new StringWriter()), "events", "--admin", admin));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!sw.toString().contains("exists -") && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        assertEquals("exists -\n", sw.toString());
        assertFalse(exit.isDone());
        assertEquals("/events", node.last().uri());
        firstSeen.countDown();
        assertEquals(0, exit.get(10, TimeUnit.SECONDS)); // the server ended the stream
        assertEquals("exists -\nchange resource name:r0 role:Secondary\n", sw.toString());
    }

    @Test
    void eventsErrorAnswer() {
        node.route(r -> FakeNode.error(404, "no such path: /events", "not-found"));
        Cli.Result res = run("events");
        assertEquals(1, res.exit(), res::toString);
        assertEquals("replctl: no such path: /events\n", res.err());
    }
}
