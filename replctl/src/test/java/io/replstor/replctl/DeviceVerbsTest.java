package io.replstor.replctl;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** attach, detach and the device in status, against a fake admin API on a real Unix socket. */
class DeviceVerbsTest extends FakeNodeTestBase {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String ATTACHED = AdminVerbsTest.STATUS.replaceFirst("\"device\": null",
            "\"device\": \"/dev/nbd0\"");

    /** Verbs answer like the node; status says r0 is on /dev/nbd0. */
    private void attachedNode() {
        node.route(r -> r.method().equals("GET") ? FakeNode.ok(ATTACHED)
                : FakeNode.ok("{\"resource\":\"r0\",\"verb\":\"" + r.uri().substring(r.uri().lastIndexOf('/') + 1)
                + "\",\"message\":\"r0 on alpha: attached to /dev/nbd0\"}"));
    }

    @Test
    void attachPostsAndPrintsTheDeviceTheNodeRecorded() {
        attachedNode();
        Cli.Result res = run("attach", "r0");
        assertEquals(0, res.exit(), res::toString);
        assertEquals("/dev/nbd0\n", res.out());
        assertEquals("", res.err());
        assertEquals(2, node.requests.size());
        FakeNode.Request post = node.requests.get(0);
        assertEquals("POST", post.method());
        assertEquals("/resources/r0/attach", post.uri());
        assertEquals("{}", post.body());
        assertEquals("/status", node.last().uri());
    }

    @Test
    void attachToAGivenDevice() {
        attachedNode();
        Cli.Result res = run("attach", "r0", "--device", "/dev/nbd0");
        assertEquals(0, res.exit(), res::toString);
        assertEquals("{\"device\":\"/dev/nbd0\"}", node.requests.get(0).body());
    }

    @Test
    void attachJsonIsTheAnswerWithTheDevice() throws Exception {
        attachedNode();
        Cli.Result res = run("attach", "r0", "--json");
        assertEquals(0, res.exit(), res::toString);
        JsonNode j = JSON.readTree(res.out());
        assertEquals("attach", j.get("verb").asText());
        assertEquals("r0 on alpha: attached to /dev/nbd0", j.get("message").asText());
        assertEquals("/dev/nbd0", j.get("device").asText());
    }

    @Test
    void withoutAReadableStatusAttachPrintsTheMessage() {
        node.route(r -> r.method().equals("GET") ? new FakeNode.Full(500, "boom")
                : FakeNode.ok("{\"resource\":\"r0\",\"verb\":\"attach\",\"message\":\"r0 on alpha: attached to"
                + " /dev/nbd3\"}"));
        Cli.Result res = run("attach", "r0");
        assertEquals(0, res.exit(), res::toString);
        assertEquals("r0 on alpha: attached to /dev/nbd3\n", res.out());
    }

    @Test
    void aRefusedAttachIsExitOneWithTheNodesMessage() throws Exception {
        String why = "r0 on beta: attaching /dev/nbd0 failed: nbd-client exited 1: Error: Connection not allowed by"
                + " server policy. Server said: export 'r0': resource r0 cannot be used on beta: peer alpha is Primary;"
                + " the Primary is alpha (nbd://10.99.0.1:10809/r0)";
        node.route(r -> FakeNode.error(409, why, "state"));
        Cli.Result res = run("attach", "r0");
        assertEquals(1, res.exit(), res::toString);
        assertEquals("replctl: " + why + "\n", res.err());
        assertEquals("", res.out());
        assertEquals(1, node.requests.size());

        Cli.Result json = run("attach", "r0", "--json");
        assertEquals(1, json.exit());
        assertEquals("state", JSON.readTree(json.out()).get("code").asText());
    }

    @Test
    void aBadDeviceIsExitTwoAndNothingIsSent() {
        for (String dev : List.of("/dev/sda", "nbd0", "/dev/nbd", "/dev/nbd0p1")) {
            Cli.Result res = run("attach", "r0", "--device", dev);
            assertEquals(2, res.exit(), res::toString);
            assertTrue(res.err().startsWith("replctl: '" + dev + "' is not an NBD device"), res::toString);
        }
        Cli.Result extra = run("detach", "r0", "--device", "/dev/nbd0");
        assertEquals(2, extra.exit(), extra::toString);
        assertTrue(node.requests.isEmpty());
    }

    @Test
    void detachPostsAndPrintsTheMessage() {
        node.route(r -> FakeNode.ok("{\"resource\":\"r0\",\"verb\":\"detach\",\"message\":\"r0 on alpha: detached"
                + " /dev/nbd0\"}"));
        Cli.Result res = run("detach", "r0");
        assertEquals(0, res.exit(), res::toString);
        assertEquals("r0 on alpha: detached /dev/nbd0\n", res.out());
        assertEquals("/resources/r0/detach", node.last().uri());
        assertEquals("{}", node.last().body());

        node.route(r -> FakeNode.error(409, "r0 on alpha: /dev/nbd0 is in use: /dev/nbd0 is mounted on /mnt; stop"
                + " using it first", "in-use"));
        Cli.Result busy = run("detach", "r0");
        assertEquals(1, busy.exit());
        assertEquals("replctl: r0 on alpha: /dev/nbd0 is in use: /dev/nbd0 is mounted on /mnt; stop using it first\n",
                busy.err());
    }

    @Test
    void statusShowsTheDevice() {
        node.route(r -> FakeNode.ok(ATTACHED));
        Cli.Result res = run("status", "r0");
        assertEquals(0, res.exit(), res::toString);
        assertTrue(res.out().startsWith("r0 role:Primary\n  disk:UpToDate device:/dev/nbd0\n  beta "), res::toString);
    }
}
