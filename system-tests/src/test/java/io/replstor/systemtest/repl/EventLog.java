package io.replstor.systemtest.repl;

import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.replstor.systemtest.support.BackgroundProcess;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code replctl events --json} running in the background: every JSON line it printed so far, in order. The fixture
 * stops it by PID after the test.
 */
final class EventLog {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final String node;
    private final BackgroundProcess process;

    EventLog(String node, BackgroundProcess process) {
        this.node = node;
        this.process = process;
    }

    /** The events so far (lines that are not JSON objects, e.g. the command line, are skipped). */
    List<JsonNode> events() {
        List<JsonNode> events = new ArrayList<>();
        for (String line : process.log().split("\n")) {
            if (line.startsWith("{")) {
                try {
                    events.add(JSON.readTree(line));
                } catch (IOException e) {
                    // the last line may be incomplete while replctl is writing it
                }
            }
        }
        return events;
    }

    /** Waits for the end of the initial state dump ({@code exists} of object {@code -}): changes follow from here. */
    EventLog awaitInitialState(Duration limit) {
        long deadline = System.nanoTime() + limit.toNanos();
        while (events().stream().noneMatch(e -> "exists".equals(e.path("type").asText())
                && "-".equals(e.path("object").asText()))) {
            if (!process.isAlive()) {
                fail(node + ": replctl events ended before printing the initial state:\n" + process.log());
            }
            if (System.nanoTime() > deadline) {
                fail(node + ": replctl events printed no initial state within " + limit.toSeconds() + " s:\n"
                        + process.log());
            }
            ReplNode.sleep(50);
        }
        return this;
    }

    void stop() {
        process.stop();
    }

    String text() {
        return process.log();
    }
}
