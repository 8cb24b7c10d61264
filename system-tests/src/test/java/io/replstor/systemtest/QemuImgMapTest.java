package io.replstor.systemtest;

import static org.junit.jupiter.api.Assertions.assertEquals;
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
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * {@code qemu-img map} asks BLOCK_STATUS (base:allocation, always with REQ_ONE) for the whole export; the answer must
 * match where the export's sparse file has data and where it has holes.
 */
@Tag("system")
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class QemuImgMapTest {
    private static final long MIB = 1L << 20;
    private static final long EXPORT_BYTES = 64 * MIB;
    /** Where the file has data and holes; MiB-aligned, so any filesystem block size reports them exactly. */
    private static final List<Region> LAYOUT = List.of(
            new Region(0, MIB, false),
            new Region(MIB, 3 * MIB, true),
            new Region(4 * MIB, 36 * MIB, false),
            new Region(40 * MIB, MIB, true),
            new Region(41 * MIB, 22 * MIB, false),
            new Region(63 * MIB, MIB, true));

    @RegisterExtension
    final SystemTestFixture fixture = new SystemTestFixture();

    /** A byte range of the export and whether the file has data there. */
    private record Region(long start, long length, boolean data) {
        long end() {
            return start + length;
        }
    }

    @Test
    void mapReportsDataWhereTheFileHasDataAndZeroHolesElsewhere() throws IOException {
        Path file = TestData.sparseFile(fixture.dir().resolve("disk.img"), EXPORT_BYTES);
        SplittableRandom random = TestData.seededRandom("mapped data");
        for (Region region : LAYOUT) {
            if (region.data()) {
                TestData.writeRandom(file, region.start(), region.length(), random);
            }
        }
        NbdServer server = fixture.startServer(ServerSpec.of(ExportSpec.ofFile("disk", file)));

        CommandResult map = ExternalCommand.of("qemu-img", "map", "--output=json", "-f", "raw", server.uri("disk"))
                .timeout(Duration.ofSeconds(60)).runSuccessfully();

        JsonNode extents = new ObjectMapper().readTree(map.stdout());
        long covered = 0;
        for (JsonNode extent : extents) {
            long start = extent.get("start").asLong();
            long length = extent.get("length").asLong();
            assertEquals(covered, start, () -> "extents must cover the export without gaps:\n" + map.describe());
            Region region = regionContaining(start, length, map);
            String where = "extent " + extent + " lies in " + region + "\n" + map.describe();
            assertEquals(region.data(), extent.get("data").asBoolean(), where);
            assertEquals(!region.data(), extent.get("zero").asBoolean(), where);
            covered = start + length;
        }
        assertEquals(EXPORT_BYTES, covered, () -> "extents must reach the end of the export:\n" + map.describe());
    }

    private static Region regionContaining(long start, long length, CommandResult map) {
        for (Region region : LAYOUT) {
            if (start >= region.start() && start < region.end()) {
                assertTrue(start + length <= region.end(), () -> "extent at " + start + " of " + length
                        + " bytes runs across the boundary of " + region + " into a region of the other kind:\n"
                        + map.describe());
                return region;
            }
        }
        throw new AssertionError("extent at " + start + " is outside the export:\n" + map.describe());
    }
}
