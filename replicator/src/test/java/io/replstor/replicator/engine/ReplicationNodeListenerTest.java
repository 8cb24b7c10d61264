package io.replstor.replicator.engine;

import io.replstor.replicator.config.ClusterConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/** The replication listener before a connection's HELLO has named its resource (and so its handshake). */
@Timeout(30)
class ReplicationNodeListenerTest {
    @TempDir
    Path dir;

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    /** alpha alone; resource r0 with a 0.5 s handshake timeout (it need not be up). */
    private ClusterConfig config() throws Exception {
        String toml = "[cluster]\nname = \"t\"\nquorum = \"off\"\n"
                + "[[node]]\nname = \"alpha\"\nid = 1\naddress = \"127.0.0.1:" + freePort() + "\"\nnbd = \"127.0.0.1:"
                + freePort() + "\"\nadmin = \"" + dir.resolve("a.sock") + "\"\n"
                + "[[node]]\nname = \"beta\"\nid = 0\naddress = \"127.0.0.1:" + freePort() + "\"\nnbd = \"127.0.0.1:"
                + freePort() + "\"\nadmin = \"" + dir.resolve("b.sock") + "\"\n"
                + "[[resource]]\nname = \"r0\"\nsize = \"64MiB\"\nconnect-int = 1\nping-int = 1\ntimeout = 5\n"
                + "[resource.on.alpha]\ndisk = \"" + dir.resolve("alpha.img") + "\"\n"
                + "[resource.on.beta]\ndisk = \"" + dir.resolve("beta.img") + "\"\n";
        return ClusterConfig.parse(toml, "listener.toml");
    }

    /** Reads until the end of the stream; fails if nothing ends it within {@code ms}. */
    private static void assertClosedWithin(Socket s, int ms, String what) throws IOException {
        s.setSoTimeout(ms);
        try {
            while (s.getInputStream().read() >= 0) {
                // nothing is expected, but whatever came is not the point
            }
        } catch (SocketTimeoutException e) {
            fail("the node still holds a connection that sent " + what + " " + ms + " ms later");
        } catch (SocketException reset) {
            // closed with a reset: closed all the same
        }
    }

    @Test
    void aConnectionThatNeverCompletesAHelloIsClosedAfterTheHandshakeTimeout() throws Exception {
        try (ReplicationNode alpha = ReplicationNode.start(config(), "alpha", FaultInjection.NONE, 1 << 20);
             Socket silent = new Socket(); Socket partial = new Socket()) {
            long start = System.nanoTime();
            silent.connect(alpha.self().address().toSocketAddress(), 5000);
            partial.connect(alpha.self().address().toSocketAddress(), 5000);
            partial.getOutputStream().write(new byte[]{0x52, 0x50, 0x4C, 0x31, 0, 1}); // "RPL1", then half a type
            assertClosedWithin(silent, 5000, "nothing");
            assertClosedWithin(partial, 5000, "6 bytes of a frame header");
            long ms = (System.nanoTime() - start) / 1_000_000;
            assertTrue(ms >= 400, "closed after " + ms + " ms: the timeout is the handshake's, 500 ms");
        }
    }
}
