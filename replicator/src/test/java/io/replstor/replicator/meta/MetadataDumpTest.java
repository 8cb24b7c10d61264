package io.replstor.replicator.meta;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.replstor.replicator.DiskState;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.Set;

import static io.replstor.replicator.meta.MetaFiles.MIB;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MetadataDumpTest {
    @TempDir
    Path dir;

    /** A node that crashed while Primary with peer 1 disconnected and writes in two extents. */
    private Path crashedNode() throws Exception {
        Path file = dir.resolve("r0.img");
        CreateOptions options = CreateOptions.of("r0", 0).withMaxPeers(2).withPeerNodeIds(List.of(1));
        Metadata md = MetaFiles.create(file, 64 * MIB, options);
        md.commit(s -> s.withDiskState(DiskState.UP_TO_DATE).with(VolumeFlag.PRIMARY, true));
        md.newCurrentUuid(Set.of(1), true);
        md.newCurrentUuid(Set.of(), true);
        md.newCurrentUuid(Set.of(), true); // slot 0 already records: the previous current goes to history
        md.activityLog().beginWrite(0, 8192);
        md.activityLog().beginWrite(5 * 4 * MIB, 4096);
        md.bitmap().set(0, 0, 8192);
        md.flush();
        MetaFiles.crash(md);
        return file;
    }

    @Test
    @Timeout(10)
    void jsonDumpOfAStoppedNodeShowsStateUuidsPeersAndWhatToResync() throws Exception {
        Path file = crashedNode();
        JsonNode j;
        try (Metadata md = MetadataDump.open(MetaFiles.readOnly(file))) {
            j = new ObjectMapper().readTree(MetadataDump.json(md));
        }
        assertEquals("r0", j.get("resource").asText());
        assertEquals("internal", j.get("placement").asText());
        assertEquals("UpToDate", j.get("disk_state").asText());
        assertTrue(j.get("consistent").asBoolean());
        assertEquals("[\"was-primary\"]", j.get("flags").toString(), "read-only: crashed-primary not derived");
        assertEquals(16, j.get("current_uuid").asText().length());
        JsonNode peer = j.get("peers").get(0);
        assertEquals(1, peer.get("node_id").asInt());
        assertEquals(2, peer.get("out_of_sync_bits").asLong());
        assertEquals(8192, peer.get("out_of_sync_bytes").asLong());
        assertFalse("0000000000000000".equals(peer.get("bitmap_uuid").asText()), "records since the disconnect");
        assertTrue(j.get("peers").get(1).get("node_id").isNull());
        assertEquals(1, j.get("history_uuids").size());
        JsonNode al = j.get("activity_log");
        assertFalse(al.get("clean_shutdown").asBoolean());
        assertEquals("[0,5]", al.get("extents_to_resync").toString());
        assertEquals(64 * MIB - 4096L * (2 + 8 + 2), j.get("data_size_bytes").asLong());
    }

    @Test
    @Timeout(10)
    void textDumpIsReadableAndTheDumpChangesNothing() throws Exception {
        Path file = crashedNode();
        byte[] before = MetaFiles.read(file, 0, (int) (64 * MIB));
        String text;
        try (Metadata md = MetadataDump.open(MetaFiles.readOnly(file))) {
            text = MetadataDump.text(md);
        }
        assertArrayEquals(before, MetaFiles.read(file, 0, (int) (64 * MIB)));
        assertTrue(text.startsWith("resource r0, node 0: internal metadata on " + file), text);
        assertTrue(text.contains("disk          UpToDate, flags was-primary"), text);
        assertTrue(text.contains("peer slot 0   node 1"), text);
        assertTrue(text.contains("out of sync 8KiB (2 bits)"), text);
        assertTrue(text.contains("unclean shutdown: resync extents 0,5"), text);
        assertFalse(text.contains("peer slot 1 "), "unused slots are left out: " + text);
    }

    @Test
    @Timeout(10)
    void dumpRefusesAWritableDisk() throws Exception {
        Path file = crashedNode();
        try (MetaDisk disk = MetaFiles.internal(file)) {
            assertThrows(IllegalArgumentException.class, () -> MetadataDump.open(disk));
        }
    }
}
