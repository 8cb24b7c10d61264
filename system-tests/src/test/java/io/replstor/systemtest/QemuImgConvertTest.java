package io.replstor.systemtest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * {@code qemu-img convert -n} onto the export, then {@code qemu-img compare}. The export starts full of 0xee, so the
 * source's holes only compare equal if qemu's zeroing (WRITE_ZEROES, FAST_ZERO with its ENOTSUP fallback) worked.
 */
@Tag("system")
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class QemuImgConvertTest {
    private static final long IMAGE_BYTES = 128L << 20;
    private static final Duration QEMU_IMG_TIMEOUT = Duration.ofSeconds(120);

    @RegisterExtension
    final SystemTestFixture fixture = new SystemTestFixture();

    @Test
    void convertedImageWithDataAndHolesComparesIdentical() throws IOException {
        Path source = TestData.sparseFile(fixture.dir().resolve("source.img"), IMAGE_BYTES);
        SplittableRandom random = TestData.seededRandom("source image");
        TestData.writeRandom(source, 0, 3 << 20, random);
        TestData.writeRandom(source, (10 << 20) + 4096, 200 << 10, random);
        TestData.writeRandom(source, (64 << 20) - (1 << 20), 2 << 20, random);
        TestData.writeRandom(source, (100 << 20) + 512, 1536, random);
        TestData.writeRandom(source, IMAGE_BYTES - (64 << 10), 64 << 10, random);
        Path target = TestData.sparseFile(fixture.dir().resolve("export.img"), IMAGE_BYTES);
        TestData.fill(target, 0, IMAGE_BYTES, (byte) 0xee);
        NbdServer server = fixture.startServer(ServerSpec.of(ExportSpec.ofFile("disk", target)));

        qemuImg("convert", "-n", "-f", "raw", "-O", "raw", source.toString(), server.uri("disk"));
        CommandResult compare = qemuImg("compare", "-f", "raw", "-F", "raw", source.toString(), server.uri("disk"));

        assertTrue(compare.stdout().contains("Images are identical"), compare::describe);
        assertEquals(TestData.sha256(source), TestData.sha256(target),
                "after qemu-img convert flushed, the export's file must hold the source image");
    }

    private static CommandResult qemuImg(String... args) {
        return ExternalCommand.of("qemu-img", args).timeout(QEMU_IMG_TIMEOUT).runSuccessfully();
    }
}
