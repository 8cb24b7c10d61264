package io.replstor.systemtest.repl;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.replstor.systemtest.support.CommandResult;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Both superblock copies damaged (the last two 4 KiB blocks of the backing file, bytes flipped inside the payload so
 * that the magic still matches and only the checksum fails): the node starts, but r0 is not up; its status
 * {@code error}, {@code replctl up} (which fails) and {@code replctl dump-md} all name the damaged blocks.
 */
@Tag("system")
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class CorruptMetadataTest {
    private static final int BLOCK = 4096;
    /** Inside the superblock's payload, past the magic/type/version/transaction header. */
    private static final int FLIP_AT = 200;

    @RegisterExtension
    final ReplFixture fixture = new ReplFixture();

    @Test
    void bothSuperblockCopiesCorruptKeepTheResourceDownAndEveryToolNamesTheBlock() throws Exception {
        ReplCluster cluster = fixture.cluster(ClusterSpec.twoNodes()).initializeUpToDate();
        ReplNode alpha = cluster.alpha();
        alpha.stop();

        long blocks = Files.size(alpha.disk()) / BLOCK;
        long copyA = blocks - 2;
        long copyB = blocks - 1;
        flip(alpha.disk(), copyA * BLOCK + FLIP_AT);
        flip(alpha.disk(), copyB * BLOCK + FLIP_AT);

        alpha.start();
        ResourceView v = alpha.status();
        assertFalse(v.up(), () -> "r0 must not come up on corrupt metadata:\n" + v);
        assertNotNull(v.error(), () -> "the status must say why r0 is down:\n" + v);
        assertNamesBothCopies("status error", v.error(), copyA, copyB);

        CommandResult up = alpha.replctl("up").assertFailure();
        assertNamesBothCopies("replctl up", up.stdout() + up.stderr(), copyA, copyB);

        CommandResult dump = alpha.replctl("dump-md").assertFailure();
        assertNamesBothCopies("replctl dump-md", dump.stdout() + dump.stderr(), copyA, copyB);

        ResourceView still = alpha.status();
        assertFalse(still.up(), still::toString);
        System.out.println("corrupt metadata: status error: " + v.error());
    }

    private static void assertNamesBothCopies(String what, String text, long copyA, long copyB) {
        assertTrue(text.contains("block " + copyA) && text.contains("block " + copyB),
                () -> what + " must name both superblock blocks (" + copyA + " and " + copyB + "):\n" + text);
    }

    /** Inverts one byte of the file. */
    private static void flip(Path file, long offset) throws IOException {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ByteBuffer b = ByteBuffer.allocate(1);
            channel.read(b, offset);
            b.flip();
            byte value = b.get(0);
            channel.write(ByteBuffer.wrap(new byte[] {(byte) ~value}), offset);
            channel.force(true);
        }
    }
}
