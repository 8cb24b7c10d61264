package io.replstor.replctl;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.replstor.replicator.config.ClusterConfig;
import io.replstor.replicator.engine.MetadataSetup;
import io.replstor.replicator.meta.CreateOptions;
import io.replstor.replicator.meta.MetadataGeometry;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** create-md and dump-md on real sparse files, configured by a real cluster file. */
class MetadataCommandsTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    /** A cluster file for {@code nodes} on 127.0.0.1, resource r0 of {@code size} on DIR/NAME-r0.img. */
    static Path writeConfig(Path dir, List<String> nodes, String size, String firstAdmin) throws Exception {
        StringBuilder b = new StringBuilder("[cluster]\nname = \"test\"\nquorum = \"off\"\n");
        for (int i = 0; i < nodes.size(); i++) {
            String n = nodes.get(i);
            b.append("[[node]]\nname = \"").append(n).append("\"\nid = ").append(i)
                    .append("\naddress = \"127.0.0.1:").append(17000 + i).append("\"\nnbd = \"127.0.0.1:")
                    .append(18000 + i).append("\"\nadmin = \"")
                    .append(i == 0 && firstAdmin != null ? firstAdmin : dir.resolve(n + ".sock").toString())
                    .append("\"\n");
        }
        b.append("[[resource]]\nname = \"r0\"\nsize = \"").append(size).append("\"\nal-extents = 67\n");
        for (String n : nodes) {
            b.append("[resource.on.").append(n).append("]\ndisk = \"").append(dir.resolve(n + "-r0.img"))
                    .append("\"\n");
        }
        Path config = dir.resolve("cluster.toml");
        Files.writeString(config, b.toString());
        return config;
    }

    private Path config() throws Exception {
        return writeConfig(tmp, List.of("alpha", "beta", "gamma"), "64MiB", null);
    }

    private Cli.Result run(Path config, String... args) {
        String[] all = new String[args.length + 4];
        System.arraycopy(args, 0, all, 0, args.length);
        all[args.length] = "--config";
        all[args.length + 1] = config.toString();
        all[args.length + 2] = "--node";
        all[args.length + 3] = "beta";
        return Cli.run(all);
    }

    @Test
    void createMdMakesASparseFileThatHoldsTheSizeAndDumpShowsIt() throws Exception {
        Path config = config();
        Path image = tmp.resolve("beta-r0.img");
        Cli.Result created = run(config, "create-md", "r0");
        assertEquals(0, created.exit(), created::toString);
        assertTrue(Files.isRegularFile(image));
        ClusterConfig c = ClusterConfig.load(config);
        CreateOptions o = MetadataSetup.createOptions(c, c.requireNode("beta"), c.resource("r0").orElseThrow(), false);
        long required = MetadataSetup.internalDeviceBytes(o, 64L << 20);
        assertEquals(required, Files.size(image));
        assertTrue(MetadataGeometry.forInternal(o, required).dataSizeBytes() >= 64L << 20);
        assertTrue(created.out().startsWith("created " + image + " (" + required + " bytes, sparse)\n"),
                created::toString);
        assertTrue(created.out().contains("r0: created metadata on node beta (id 1): internal metadata on " + image
                + "; data 64MiB"), created::toString);
        Process stat = new ProcessBuilder("stat", "-c", "%b", image.toString()).start();
        long allocated = Long.parseLong(new String(stat.getInputStream().readAllBytes()).strip()) * 512;
        assertTrue(allocated < required / 4, "the file is sparse: " + allocated + " bytes allocated");

        Cli.Result dump = run(config, "dump-md", "r0", "--json");
        assertEquals(0, dump.exit(), dump::toString);
        JsonNode j = JSON.readTree(dump.out());
        assertEquals("r0", j.get("resource").asText());
        assertEquals(1, j.get("node_id").asInt());
        assertEquals(64L << 20, j.get("data_size_bytes").asLong());
        assertEquals(2, j.get("max_peers").asInt());
        assertEquals("Inconsistent", j.get("disk_state").asText());
        assertEquals(0, j.get("peers").get(0).get("node_id").asInt()); // alpha
        assertEquals(2, j.get("peers").get(1).get("node_id").asInt()); // gamma
        String uuid = j.get("current_uuid").asText();
        assertTrue(uuid.matches("[0-9A-F]{16}"), uuid);
        assertTrue(j.get("flags").toString().length() > 2, j.toString());

        Cli.Result text = run(config, "dump-md", "r0");
        assertEquals(0, text.exit(), text::toString);
        assertTrue(text.out().startsWith("resource r0, node 1: internal metadata on " + image), text::toString);
        assertTrue(text.out().contains("current uuid  " + uuid), text::toString);
        assertTrue(text.out().contains("disk          Inconsistent"), text::toString);
    }

    @Test
    void createMdRefusesToOverwriteUnlessForced() throws Exception {
        Path config = config();
        assertEquals(0, run(config, "create-md", "r0").exit());
        Path image = tmp.resolve("beta-r0.img");
        flipByte(image, Files.size(image) - 8192 + 100); // superblock copy A: dump-md warns, copy B still valid
        String before = dumpJson(config).get("warnings").toString();
        assertTrue(before.contains("superblock copy A"), before);

        Cli.Result again = run(config, "create-md", "r0");
        assertEquals(1, again.exit(), again::toString);
        assertTrue(again.err().startsWith("replctl: internal metadata on " + tmp.resolve("beta-r0.img")
                + " already holds valid metadata of resource 'r0'"), again::toString);
        assertTrue(again.err().contains("use --force"), again::toString);
        assertEquals(before, dumpJson(config).get("warnings").toString()); // untouched

        Cli.Result forced = run(config, "create-md", "r0", "--force", "--json");
        assertEquals(0, forced.exit(), forced::toString);
        JsonNode j = JSON.readTree(forced.out());
        assertEquals("beta", j.get("node").asText());
        assertEquals("r0", j.get("resource").asText());
        assertEquals(0, j.get("files").size()); // the file was big enough
        assertEquals("[]", dumpJson(config).get("warnings").toString()); // both copies rewritten
    }

    private JsonNode dumpJson(Path config) throws Exception {
        Cli.Result dump = run(config, "dump-md", "r0", "--json");
        assertEquals(0, dump.exit(), dump::toString);
        return JSON.readTree(dump.out());
    }

    private static void flipByte(Path file, long offset) throws Exception {
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.seek(offset);
            byte b = f.readByte();
            f.seek(offset);
            f.writeByte(b ^ 0x5A);
        }
    }

    @Test
    void createMdExtendsATooSmallFile() throws Exception {
        Path config = config();
        Path image = tmp.resolve("beta-r0.img");
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
            f.setLength(1 << 20);
        }
        Cli.Result res = run(config, "create-md", "r0");
        assertEquals(0, res.exit(), res::toString);
        assertTrue(res.out().startsWith("extended " + image + " from 1048576 to " + Files.size(image)
                + " bytes (sparse)\n"), res::toString);
        assertTrue(Files.size(image) > 64L << 20);
    }

    @Test
    void corruptSuperblocksMakeDumpMdFailNamingTheBlock() throws Exception {
        Path config = config();
        assertEquals(0, run(config, "create-md", "r0").exit());
        Path image = tmp.resolve("beta-r0.img");
        long size = Files.size(image);
        flipByte(image, size - 8192 + 100); // superblock copy A
        flipByte(image, size - 4096 + 100); // superblock copy B
        Cli.Result dump = run(config, "dump-md", "r0");
        assertEquals(1, dump.exit(), dump::toString);
        Matcher m = Pattern.compile("block (\\d+) at offset (\\d+)").matcher(dump.err());
        assertTrue(m.find(), dump::toString);
        assertTrue(dump.err().startsWith("replctl: internal metadata on " + image), dump::toString);
        assertTrue(dump.err().contains("superblock copy A"), dump::toString);
        assertEquals("", dump.out());
    }

    @Test
    void missingBackingFileOrUnknownResource() throws Exception {
        Path config = config();
        Cli.Result dump = run(config, "dump-md", "r0");
        assertEquals(1, dump.exit(), dump::toString);
        assertTrue(dump.err().contains("does not exist (create it with create-md)"), dump::toString);

        Cli.Result unknown = run(config, "create-md", "r7");
        assertEquals(2, unknown.exit(), unknown::toString);
        assertTrue(unknown.err().contains("resource 'r7' is not defined (resources: r0)"), unknown::toString);

        Cli.Result noConfig = Cli.run("create-md", "r0");
        assertEquals(2, noConfig.exit(), noConfig::toString);

        Files.writeString(config, "[cluster]\nname = \"x\"\n[[node]]\nname = \"beta\"\n");
        Cli.Result bad = run(config, "dump-md", "r0");
        assertEquals(2, bad.exit(), bad::toString);
        assertTrue(bad.err().contains(config + ":"), bad::toString);
    }

    @Test
    void refusedWhileTheDaemonHasTheResourceUp() throws Exception {
        Path socket = tmp.resolve("beta.sock");
        Path config = config();
        assertEquals(0, run(config, "create-md", "r0").exit());
        try (FakeNode daemon = new FakeNode(socket, r -> FakeNode.ok("{\"pid\":99,\"node\":\"beta\",\"resources\":"
                + "[{\"name\":\"r0\",\"up\":true,\"peers\":[]}]}"))) {
            for (String verb : List.of("create-md", "dump-md")) {
                Cli.Result res = run(config, verb, "r0", "--force");
                if (verb.equals("dump-md")) {
                    res = run(config, verb, "r0");
                }
                assertEquals(1, res.exit(), res::toString);
                assertTrue(res.err().contains("resource 'r0' is up on node beta (repld pid 99"), res::toString);
            }
            daemon.route(r -> FakeNode.ok("{\"pid\":99,\"node\":\"beta\",\"resources\":[{\"name\":\"r0\",\"up\":false,"
                    + "\"peers\":[]}]}"));
            assertEquals(0, run(config, "dump-md", "r0").exit());
            assertEquals("/status", daemon.last().uri());
        }
        Files.createFile(socket); // a stale socket nobody listens on: proceed
        assertEquals(0, run(config, "dump-md", "r0").exit());
        assertFalse(Files.size(socket) > 0);
    }
}
