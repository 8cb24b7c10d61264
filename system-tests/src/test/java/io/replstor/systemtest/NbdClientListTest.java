package io.replstor.systemtest;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.replstor.systemtest.support.CommandResult;
import io.replstor.systemtest.support.ExportSpec;
import io.replstor.systemtest.support.ExternalCommand;
import io.replstor.systemtest.support.NbdServer;
import io.replstor.systemtest.support.ServerSpec;
import io.replstor.systemtest.support.SystemTestFixture;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/** {@code nbd-client -l} (the kernel client's userspace half) sends OPT_LIST, then OPT_ABORT; needs no nbd.ko. */
@Tag("system")
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class NbdClientListTest {
    @RegisterExtension
    final SystemTestFixture fixture = new SystemTestFixture();

    @Test
    void listPrintsTheNameOfEveryExport() {
        NbdServer server = fixture.startServer(ServerSpec.of(
                ExportSpec.sparse("alpha", fixture.dir().resolve("alpha.img"), 16L << 20),
                ExportSpec.sparse("beta", fixture.dir().resolve("beta.img"), 16L << 20)));

        CommandResult list = ExternalCommand.of("nbd-client", "-l", NbdServer.HOST, Integer.toString(server.port()))
                .timeout(Duration.ofSeconds(30)).runSuccessfully();

        // one line per export, "NAME" or "NAME: DESCRIPTION", after the "Negotiation: .." progress line
        Set<String> names = list.stdout().lines()
                .filter(line -> !line.isBlank() && !line.startsWith("Negotiation"))
                .map(line -> line.split(": ", 2)[0])
                .collect(Collectors.toSet());
        assertEquals(Set.of("alpha", "beta"), names, list.describe());
    }
}
