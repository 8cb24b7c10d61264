package io.replstor.systemtest.support;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The command runner every system test relies on: output capture, exit codes, time limits, missing programs. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class ExternalCommandTest {
    @Test
    void capturesStdoutStderrAndExitCode() {
        CommandResult result = ExternalCommand.of("sh", "-c", "echo out; echo err >&2; exit 3").run();

        assertEquals(3, result.exitCode());
        assertEquals("out\n", result.stdout());
        assertEquals("err\n", result.stderr());
        assertFalse(result.timedOut());
    }

    @Test
    void failedCommandAssertionCarriesTheCommandLineAndOutput() {
        CommandResult result = ExternalCommand.of("sh", "-c", "echo why-it-failed >&2; exit 1").run();

        AssertionError error = assertThrows(AssertionError.class, result::assertSuccess);

        assertTrue(error.getMessage().contains("sh -c"), error.getMessage());
        assertTrue(error.getMessage().contains("why-it-failed"), error.getMessage());
    }

    @Test
    void commandOverItsTimeLimitIsStoppedAndReportedAsTimedOut() {
        long startNs = System.nanoTime();
        CommandResult result = ExternalCommand.of("sleep", "60").timeout(Duration.ofMillis(200)).run();

        assertTrue(result.timedOut(), result::describe);
        assertTrue(Duration.ofNanos(System.nanoTime() - startNs).toSeconds() < 10, result::describe);
        assertThrows(AssertionError.class, result::assertFailure);
    }

    @Test
    void missingProgramFailsNamingTheDebianPackage() {
        AssertionError error = assertThrows(AssertionError.class, () -> Tools.require("no-such-program-replstor"));

        assertTrue(error.getMessage().contains("install the Debian package"), error.getMessage());
        assertTrue(Tools.require("sh").isAbsolute());
    }
}
