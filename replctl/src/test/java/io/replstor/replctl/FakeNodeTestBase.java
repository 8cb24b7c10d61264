package io.replstor.replctl;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

/**
 * Tests that run replctl against one fake node: a {@link FakeNode} on a real Unix socket ({@code alpha.sock} in a
 * temporary directory), answering {@code {}} until a test routes it otherwise.
 */
abstract class FakeNodeTestBase {
    @TempDir
    Path tmp;
    FakeNode node;
    /** The fake node's socket, for {@code --admin}. */
    String admin;

    @BeforeEach
    void startNode() {
        Path socket = tmp.resolve("alpha.sock");
        admin = socket.toString();
        node = new FakeNode(socket, r -> FakeNode.ok("{}"));
    }

    @AfterEach
    void stopNode() throws Exception {
        node.close();
    }

    /** replctl with {@code args}, aimed at the fake node. */
    Cli.Result run(String... args) {
        return Cli.runAt(admin, args);
    }
}
