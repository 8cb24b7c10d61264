package io.replstor.replctl;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * {@code replctl status [RES]}: a node's resources like {@code drbdadm status}, or for a plain
 * {@code repld serve} node its exports and counters. {@code --json} prints the node's JSON (see
 * cluster/README.md), with {@code resources} narrowed to RES if given.
 */
@Command(name = "status", mixinStandardHelpOptions = true,
        description = "Show a node's resources (role, disk, peers, resync) or, for repld serve, its exports.")
final class StatusCommand implements Callable<Integer> {
    private static final ObjectMapper JSON = new ObjectMapper();

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Mixin
    NodeOptions nodeOptions;

    @Parameters(index = "0", arity = "0..1", paramLabel = "RES", description = "only this resource")
    String resource;

    @Option(names = "--json", description = "print the node's JSON status (narrowed to RES if given)")
    boolean json;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        Path socket = nodeOptions.socket();
        AdminClient.Response r = AdminClient.getObject(socket, "/status");
        JsonNode s = r.json();
        if (resource != null) {
            s = only((ObjectNode) s, resource, socket);
        }
        if (json) {
            out.print(resource == null ? (r.body().endsWith("\n") ? r.body() : r.body() + "\n")
                    : JSON.writeValueAsString(s) + "\n");
        } else {
            out.print(StatusFormat.format(s));
        }
        out.flush();
        return ExitCodes.OK;
    }

    /** The status with {@code resources} narrowed to {@code name}; refused (1) if the node has no such resource. */
    private ObjectNode only(ObjectNode s, String name, Path socket) throws ReplctlException {
        JsonNode resources = s.get("resources");
        List<String> names = new ArrayList<>();
        ArrayNode kept = JSON.createArrayNode();
        if (resources != null && resources.isArray()) {
            for (JsonNode res : resources) {
                names.add(res.path("name").asText());
                if (name.equals(res.path("name").asText())) {
                    kept.add(res);
                }
            }
        }
        if (kept.isEmpty()) {
            String node = s.hasNonNull("node") ? "node " + s.get("node").asText() : socket.toString();
            throw ReplctlException.failed(node + " has no resource '" + name + "'"
                    + (resources == null ? " (it serves plain exports, no replicated resources)"
                    : " (resources: " + (names.isEmpty() ? "none" : String.join(", ", names)) + ")"));
        }
        ObjectNode copy = s.deepCopy();
        copy.set("resources", kept);
        return copy;
    }
}
