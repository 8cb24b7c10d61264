package io.replstor.replctl;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.replstor.common.Sizes;
import io.replstor.common.io.StorageException;
import io.replstor.replicator.config.NodeConfig;
import io.replstor.replicator.engine.MetadataSetup;
import io.replstor.replicator.meta.GenerationUuids;
import io.replstor.replicator.meta.MetaDisk;
import io.replstor.replicator.meta.Metadata;
import io.replstor.replicator.meta.MetadataDump;
import io.replstor.replicator.meta.MetadataException;
import io.replstor.replicator.meta.MetadataGeometry;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * The offline metadata verbs, run on the node itself with no daemon holding the resource:
 * {@code create-md} and {@code dump-md}. The node and the resource's disks come from the cluster
 * file ({@code --config FILE --node NAME}).
 */
final class MetadataCommands {
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private MetadataCommands() {
    }

    @Command(name = "create-md", mixinStandardHelpOptions = true,
            description = {"Write fresh metadata for a resource on this node (offline: the resource must not be up).",
                "A missing or too small backing file is created or extended, sparse, to the resource's size plus"
                        + " its metadata."})
    static final class CreateMd implements Callable<Integer> {
        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Mixin
        ConfigNodeOptions nodeOptions;

        @Parameters(index = "0", paramLabel = "RES", description = "the resource")
        String resource;

        @Option(names = "--force", description = "overwrite valid metadata (its UUIDs and bitmaps are lost)")
        boolean force;

        @Option(names = "--json", description = "print what was created as JSON (the dump-md fields, plus node and"
                + " files)")
        boolean json;

        @Override
        public Integer call() throws Exception {
            ConfigNodeOptions.Selection sel = nodeOptions.select(resource);
            refuseIfUp(sel.node(), resource, "create-md");
            PrintWriter out = spec.commandLine().getOut();
            List<String> files = new ArrayList<>();
            try (Metadata md = run(() -> MetadataSetup.create(sel.cluster(), sel.node(), sel.resource(), sel.disk(),
                    force, line -> {
                        files.add(line);
                        if (!json) {
                            out.println(line);
                            out.flush();
                        }
                    }))) {
                MetadataGeometry g = md.geometry();
                if (json) {
                    ObjectNode tree = MetadataDump.tree(md);
                    tree.put("node", sel.node().name());
                    ArrayNode f = tree.putArray("files");
                    files.forEach(f::add);
                    out.println(JSON.writeValueAsString(tree));
                } else {
                    out.printf("%s: created metadata on node %s (id %d): %s; data %s, metadata %s at offset %d,"
                                    + " max-peers %d, current uuid %s%n", resource, sel.node().name(), g.nodeId(),
                            md.describe(), Sizes.format(g.dataSizeBytes()), Sizes.format(g.mdSizeBytes()),
                            g.mdOffsetBytes(), g.maxPeers(), GenerationUuids.format(md.state().uuids().current()));
                }
            }
            out.flush();
            return ExitCodes.OK;
        }
    }

    @Command(name = "dump-md", mixinStandardHelpOptions = true,
            description = "Show a resource's metadata on this node (offline, read-only: the resource must not be up).")
    static final class DumpMd implements Callable<Integer> {
        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Mixin
        ConfigNodeOptions nodeOptions;

        @Parameters(index = "0", paramLabel = "RES", description = "the resource")
        String resource;

        @Option(names = "--json", description = "print the metadata as JSON")
        boolean json;

        @Override
        public Integer call() throws Exception {
            ConfigNodeOptions.Selection sel = nodeOptions.select(resource);
            refuseIfUp(sel.node(), resource, "dump-md");
            PrintWriter out = spec.commandLine().getOut();
            if (!Files.exists(sel.disk().disk())) {
                throw ReplctlException.failed("resource '" + resource + "' on node " + sel.node().name()
                        + ": backing device " + sel.disk().disk() + " does not exist (create it with create-md)");
            }
            try (Metadata md = run(() -> MetadataDump.open(sel.disk().internalMetadata()
                    ? MetaDisk.openInternal(resource, sel.disk().disk(), true)
                    : MetaDisk.openExternal(resource, sel.disk().disk(), sel.disk().metaDisk().orElseThrow(), true,
                    0)))) {
                out.print(json ? MetadataDump.json(md) + "\n" : MetadataDump.text(md));
            }
            out.flush();
            return ExitCodes.OK;
        }
    }

    interface MetadataAction {
        Metadata run() throws IOException, ReplctlException;
    }

    /** Metadata and device failures are exit code 1 with their message (it names device, block and offset). */
    static Metadata run(MetadataAction a) throws ReplctlException {
        try {
            return a.run();
        } catch (MetadataException | StorageException e) {
            throw ReplctlException.failed(e.getMessage());
        } catch (IOException e) {
            throw ReplctlException.failed(e.getMessage() == null ? e.toString() : e.getMessage());
        } catch (IllegalArgumentException e) {
            throw ReplctlException.usage(e.getMessage()); // options the configuration gave that do not fit
        }
    }

    /**
     * Refuses (exit 1) if a daemon answers on the node's admin socket with {@code resource} up. A
     * missing or silent socket means no daemon holds it: the caller proceeds.
     */
    static void refuseIfUp(NodeConfig node, String resource, String verb) throws ReplctlException {
        Path socket = node.admin();
        if (!Files.exists(socket)) {
            return;
        }
        AdminClient.Response r;
        try {
            r = AdminClient.get(socket, "/status", 3_000);
        } catch (AdminClient.AdminException e) {
            return;
        }
        JsonNode s = r.ok() ? r.json() : null;
        if (s == null) {
            return;
        }
        for (JsonNode res : s.path("resources")) {
            if (resource.equals(res.path("name").asText()) && res.path("up").asBoolean(false)) {
                throw ReplctlException.failed("resource '" + resource + "' is up on node " + node.name()
                        + " (repld pid " + s.path("pid").asText("?") + ", admin socket " + socket + "): take it down"
                        + " first (replctl down " + resource + ") before " + verb);
            }
        }
    }
}
