package io.replstor.systemtest.repl;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Free TCP ports for the nodes' listeners, below the kernel's ephemeral range and never handed out twice in this
 * JVM. A port from the ephemeral range (what binding port 0 gives) can be taken by any outgoing connection, a node's
 * own among them, between the moment the test picks it and the moment the node binds it; the store's members open
 * many such connections while the others start.
 */
final class TestPorts {
    private static final int LOW = 10_000;
    private static final Set<Integer> HANDED_OUT = ConcurrentHashMap.newKeySet();
    private static final Random RANDOM = new Random();

    private TestPorts() {
    }

    /** A port that {@code host} can bind now; random, so that test runs on one machine rarely pick the same. */
    static int free(String host) throws IOException {
        int high = ephemeralLow();
        InetAddress address = InetAddress.getByName(host);
        for (int attempt = 0; attempt < 1000; attempt++) {
            int candidate = LOW + RANDOM.nextInt(high - LOW);
            if (!HANDED_OUT.add(candidate)) {
                continue;
            }
            try (ServerSocket s = new ServerSocket()) {
                s.setReuseAddress(true);
                s.bind(new InetSocketAddress(address, candidate));
                return candidate;
            } catch (IOException e) {
                // in use: try another
            }
        }
        throw new IOException("no free port on " + host + " between " + LOW + " and " + high);
    }

    private static int ephemeralLow() {
        try {
            String range = Files.readString(Path.of("/proc/sys/net/ipv4/ip_local_port_range")).trim();
            return Math.max(20_000, Integer.parseInt(range.split("\\s+")[0]));
        } catch (IOException | RuntimeException e) {
            return 32_768;
        }
    }
}
