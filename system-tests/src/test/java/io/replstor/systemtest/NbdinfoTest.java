package io.replstor.systemtest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.replstor.systemtest.support.CommandResult;
import io.replstor.systemtest.support.ExportSpec;
import io.replstor.systemtest.support.ExternalCommand;
import io.replstor.systemtest.support.NbdServer;
import io.replstor.systemtest.support.ServerSpec;
import io.replstor.systemtest.support.SystemTestFixture;
import io.replstor.systemtest.support.TestData;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * nbdinfo (libnbd, a strict client) reports what the server advertises through OPT_INFO: size, transmission flags,
 * INFO_BLOCK_SIZE, INFO_DESCRIPTION, meta contexts; and through OPT_LIST, the exports.
 */
@Tag("system")
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class NbdinfoTest {
    private static final long EXPORT_BYTES = 256L << 20;
    private static final String DESCRIPTION = "replstor system test disk";
    /** Flags the server advertises for a writable export (research nbd.md section 1.3). */
    private static final List<String> WRITABLE_EXPORT_FLAGS = List.of("can_flush", "can_fua", "can_trim", "can_zero",
            "can_fast_zero", "can_multi_conn", "can_cache", "can_df");

    @RegisterExtension
    final SystemTestFixture fixture = new SystemTestFixture();

    @Test
    void writableExportAdvertisesSizeFlagsBlockSizesAndDescription() {
        NbdServer server = fixture.startServer(ServerSpec.of(
                ExportSpec.sparse("disk", fixture.dir().resolve("disk.img"), EXPORT_BYTES)
                        .withDescription(DESCRIPTION)));

        CommandResult info = nbdinfo("--json", server.uri("disk"));
        JsonNode root = json(info);
        JsonNode export = root.get("exports").get(0);
        String context = info.describe();

        assertEquals("newstyle-fixed", root.path("protocol").asText(), context);
        assertTrue(root.path("structured").asBoolean(), () -> "structured replies not negotiated:\n" + context);
        assertEquals("disk", export.path("export-name").asText(), context);
        assertEquals(DESCRIPTION, export.path("description").asText(), context);
        assertEquals(EXPORT_BYTES, export.path("export-size").asLong(), context);
        assertFalse(export.path("is_read_only").asBoolean(true), context);
        for (String flag : WRITABLE_EXPORT_FLAGS) {
            assertTrue(export.path(flag).asBoolean(), () -> flag + " must be true:\n" + context);
        }
        assertTrue(export.path("contexts").toString().contains("\"base:allocation\""), context);
        assertBlockSizesFollowTheSpec(export, EXPORT_BYTES, context);
    }

    @Test
    void readOnlyExportAdvertisesReadOnlyWithoutTrimOrZero() throws IOException {
        Path file = TestData.sparseFile(fixture.dir().resolve("ro.img"), 16L << 20);
        NbdServer server = fixture.startServer(ServerSpec.of(ExportSpec.ofFile("ro", file).asReadOnly()));

        CommandResult info = nbdinfo("--json", server.uri("ro"));
        JsonNode export = json(info).get("exports").get(0);

        assertEquals(16L << 20, export.path("export-size").asLong(), info.describe());
        assertTrue(export.path("is_read_only").asBoolean(), info.describe());
        assertFalse(export.path("can_trim").asBoolean(true), info.describe());
        assertFalse(export.path("can_zero").asBoolean(true), info.describe());
    }

    @Test
    void listShowsBothExportsOfATwoExportServer() {
        NbdServer server = fixture.startServer(ServerSpec.of(
                ExportSpec.sparse("alpha", fixture.dir().resolve("alpha.img"), 32L << 20),
                ExportSpec.sparse("beta", fixture.dir().resolve("beta.img"), 48L << 20)));

        CommandResult list = nbdinfo("--list", "--json", "nbd://" + NbdServer.HOST + ":" + server.port());

        Map<String, Long> sizes = new HashMap<>();
        for (JsonNode export : json(list).get("exports")) {
            sizes.put(export.path("export-name").asText(), export.path("export-size").asLong());
        }
        assertEquals(Map.of("alpha", 32L << 20, "beta", 48L << 20), sizes, list.describe());
    }

    /** INFO_BLOCK_SIZE rules of proto.md: powers of two, min <= 64 KiB, preferred >= max(min, 512), max >= pref. */
    private static void assertBlockSizesFollowTheSpec(JsonNode export, long exportBytes, String context) {
        long min = export.path("block_size_minimum").asLong();
        long preferred = export.path("block_size_preferred").asLong();
        long max = export.path("block_size_maximum").asLong();
        assertTrue(min > 0 && Long.bitCount(min) == 1 && min <= 65536,
                () -> "minimum block size " + min + ":\n" + context);
        assertTrue(Long.bitCount(preferred) == 1 && preferred >= Math.max(min, 512),
                () -> "preferred block size " + preferred + ":\n" + context);
        assertTrue(max >= preferred, () -> "maximum payload " + max + " below preferred:\n" + context);
        assertEquals(0, exportBytes % min, () -> "export size not a multiple of the minimum block size:\n" + context);
    }

    private static CommandResult nbdinfo(String... args) {
        return ExternalCommand.of("nbdinfo", args).timeout(Duration.ofSeconds(30)).runSuccessfully();
    }

    private static JsonNode json(CommandResult result) {
        try {
            return new ObjectMapper().readTree(result.stdout());
        } catch (IOException e) {
            throw new UncheckedIOException("nbdinfo printed no JSON:\n" + result.describe(), e);
        }
    }
}
