package io.replstor.replicator.engine;

import io.replstor.replicator.config.ClusterConfig;
import io.replstor.replicator.engine.MetadataSetup.Missing;
import io.replstor.replicator.meta.MetaDisk;
import io.replstor.replicator.meta.Metadata;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code repld --create-missing-disks}: what is created, and that nothing that exists is touched. */
class MetadataSetupTest {
    @TempDir
    Path dir;

    private ClusterConfig cluster(String resources) throws Exception {
        return ClusterConfig.parse("[cluster]\nname = \"t\"\nquorum = \"off\"\n"
                + "[[node]]\nname = \"alpha\"\nid = 0\naddress = \"127.0.0.1:7001\"\nnbd = \"127.0.0.1:7101\"\n"
                + "admin = \"" + dir.resolve("alpha.sock") + "\"\n"
                + "[[node]]\nname = \"beta\"\nid = 1\naddress = \"127.0.0.1:7002\"\nnbd = \"127.0.0.1:7102\"\n"
                + "admin = \"" + dir.resolve("beta.sock") + "\"\n" + resources, "t.toml");
    }

    private static String resource(String name, String alphaDisk, String alphaMeta) {
        return "[[resource]]\nname = \"" + name + "\"\nsize = \"64MiB\"\n"
                + "[resource.on.alpha]\ndisk = \"" + alphaDisk + "\"\n"
                + (alphaMeta == null ? "" : "meta-disk = \"" + alphaMeta + "\"\n")
                + "[resource.on.beta]\ndisk = \"/srv/" + name + ".img\"\n";
    }

    @Test
    void aMissingBackingFileIsCreatedSparseWithFreshMetadataInANewDirectory() throws Exception {
        Path disk = dir.resolve("new/dir/r0.img");
        ClusterConfig c = cluster(resource("r0", disk.toString(), null));

        List<Missing> done = MetadataSetup.createMissing(c, "alpha");

        assertEquals(1, done.size(), done.toString());
        assertEquals(Missing.Kind.CREATED, done.get(0).kind(), done.get(0).message());
        assertTrue(done.get(0).message().contains("resource r0 on node alpha"), done.get(0).message());
        assertTrue(Files.size(disk) > 64L << 20, "data area plus internal metadata");
        try (Metadata md = Metadata.open(MetaDisk.openInternal("r0", disk, true))) {
            assertEquals(64L << 20, md.geometry().dataSizeBytes());
            assertEquals(0, md.geometry().nodeId());
            assertEquals("r0", md.geometry().resourceName());
        }
        // a second start finds the file and leaves it alone
        byte[] before = Files.readAllBytes(disk);
        assertEquals(List.of(), MetadataSetup.createMissing(c, "alpha"));
        assertArrayEquals(before, Files.readAllBytes(disk));
    }

    @Test
    void anExistingFileIsNeverTouchedWhateverItHolds() throws Exception {
        Path disk = dir.resolve("data.img");
        byte[] content = new byte[1 << 20];
        new Random(7).nextBytes(content);
        Files.write(disk, content); // no metadata, and smaller than the resource: still not ours to change
        ClusterConfig c = cluster(resource("r0", disk.toString(), null));

        assertEquals(List.of(), MetadataSetup.createMissing(c, "alpha"));
        assertArrayEquals(content, Files.readAllBytes(disk));
    }

    @Test
    void aMissingFileWhoseExternalMetadataExistsIsLeftAlone() throws Exception {
        Path disk = dir.resolve("r0.img");
        Path meta = dir.resolve("r0.md");
        byte[] md = "someone's metadata".getBytes();
        Files.write(meta, md);
        ClusterConfig c = cluster(resource("r0", disk.toString(), meta.toString()));

        List<Missing> done = MetadataSetup.createMissing(c, "alpha");

        assertEquals(1, done.size());
        assertEquals(Missing.Kind.SKIPPED, done.get(0).kind());
        assertTrue(done.get(0).message().contains("meta-disk " + meta), done.get(0).message());
        assertFalse(Files.exists(disk));
        assertArrayEquals(md, Files.readAllBytes(meta));
    }

    @Test
    void aMissingDeviceIsNotCreatedAsAFile() throws Exception {
        ClusterConfig c = cluster(resource("r0", "/dev/replstor-test-no-such-device", null));

        List<Missing> done = MetadataSetup.createMissing(c, "alpha");

        assertEquals(Missing.Kind.SKIPPED, done.get(0).kind());
        assertTrue(done.get(0).message().contains("/dev/replstor-test-no-such-device does not exist"),
                done.get(0).message());
        assertFalse(Files.exists(Path.of("/dev/replstor-test-no-such-device")));
    }

    @Test
    void aFailureLeavesNothingBehindAndTheOtherResourcesAreStillCreated() throws Exception {
        Path notADir = dir.resolve("plain-file");
        Files.writeString(notADir, "x");
        Path bad = notADir.resolve("r0.img"); // its parent is a regular file
        Path good = dir.resolve("r1.img");
        Path externalData = dir.resolve("r2.img");
        Path externalMeta = dir.resolve("r2.md");
        ClusterConfig c = cluster(resource("r0", bad.toString(), null) + resource("r1", good.toString(), null)
                + resource("r2", externalData.toString(), externalMeta.toString()));

        List<Missing> done = MetadataSetup.createMissing(c, "alpha");

        assertEquals(3, done.size(), done.toString());
        assertEquals(Missing.Kind.FAILED, done.get(0).kind());
        assertTrue(done.get(0).message().startsWith("resource r0 on node alpha: creating " + bad),
                done.get(0).message());
        assertEquals(Missing.Kind.CREATED, done.get(1).kind(), done.get(1).message());
        assertTrue(Files.exists(good));
        assertEquals(Missing.Kind.CREATED, done.get(2).kind(), done.get(2).message());
        try (Metadata md = Metadata.open(MetaDisk.openExternal("r2", externalData, externalMeta, true, 0))) {
            assertEquals(64L << 20, md.geometry().dataSizeBytes());
        }
        assertEquals("x", Files.readString(notADir));
    }
}
