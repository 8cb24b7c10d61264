package io.replstor.systemtest.repl;

import io.replstor.systemtest.support.ExternalCommand;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;

/**
 * A network namespace {@code rst-XXXXXX} joined to the host by a veth pair: host side {@code rsth-XXXXXX} with
 * {@code 10.A.B.1/24}, namespace side {@code rstn-XXXXXX} with {@code 10.A.B.2/24}. A node run inside it
 * ({@link #wrap}) reaches the host side's address and nothing else.
 *
 * <p>{@link #linkDown()} takes the namespace end down, like a cable pulled at the far side: the namespace loses its
 * route to the host (its node's dials fail at once) and the host end loses carrier, so the host's packets to the
 * namespace are dropped (its node's dials and pings time out). The host end stays up on purpose: taken down, its
 * connected route would vanish and the host's dials to 10.A.B.2 would leave through the default route. (tc netem
 * would be the other way to cut, but this kernel has no sch_netem.)
 *
 * <p>Deleted by name ({@code ip netns del}; the kernel removes the veth pair with it, asynchronously, so a host end
 * still there afterwards is deleted by its name too); never by pattern.
 */
final class NetNamespace implements AutoCloseable {
    private static final Duration IP_TIMEOUT = Duration.ofSeconds(20);

    private final String name;
    private final String hostVeth;
    private final String nsVeth;
    private final String hostIp;
    private final String nsIp;
    private boolean deleted;

    private NetNamespace(String suffix, int a, int b) {
        this.name = "rst-" + suffix;
        this.hostVeth = "rsth-" + suffix;
        this.nsVeth = "rstn-" + suffix;
        this.hostIp = "10." + a + "." + b + ".1";
        this.nsIp = "10." + a + "." + b + ".2";
    }

    /** Creates the namespace and the link; on failure, removes what it made. */
    static NetNamespace create() {
        SecureRandom random = new SecureRandom();
        byte[] id = new byte[3];
        random.nextBytes(id);
        NetNamespace ns = new NetNamespace(HexFormat.of().formatHex(id), 200 + random.nextInt(50),
                random.nextInt(256));
        try {
            ip("netns", "add", ns.name);
            ip("link", "add", ns.hostVeth, "type", "veth", "peer", "name", ns.nsVeth);
            ip("link", "set", ns.nsVeth, "netns", ns.name);
            ip("addr", "add", ns.hostIp + "/24", "dev", ns.hostVeth);
            ip("link", "set", ns.hostVeth, "up");
            ip("-n", ns.name, "addr", "add", ns.nsIp + "/24", "dev", ns.nsVeth);
            ip("-n", ns.name, "link", "set", ns.nsVeth, "up");
            ip("-n", ns.name, "link", "set", "lo", "up");
        } catch (RuntimeException | Error e) {
            ns.close();
            throw e;
        }
        return ns;
    }

    String name() {
        return name;
    }

    /** The host side of the link: where the namespace's node dials the host's nodes. */
    String hostIp() {
        return hostIp;
    }

    /** The namespace's address: its node's replication and NBD listeners. */
    String nsIp() {
        return nsIp;
    }

    String hostVeth() {
        return hostVeth;
    }

    /** {@code ip netns exec NAME argv...}: ip execs the program, so the PID started is the program's. */
    List<String> wrap(List<String> argv) {
        List<String> wrapped = new java.util.ArrayList<>(List.of(
                io.replstor.systemtest.support.Tools.require("ip").toString(), "netns", "exec", name));
        wrapped.addAll(argv);
        return wrapped;
    }

    /** Cuts the link: the namespace end goes down, the host end loses carrier. */
    void linkDown() {
        ip("-n", name, "link", "set", nsVeth, "down");
    }

    /** Restores the link: the namespace end comes up with its address and route, the host end gets carrier. */
    void linkUp() {
        ip("-n", name, "link", "set", nsVeth, "up");
    }

    @Override
    public void close() {
        if (deleted) {
            return;
        }
        // deleting the namespace destroys the namespace end of the veth pair, and with it the host end
        var result = ExternalCommand.of("ip", "netns", "del", name).timeout(IP_TIMEOUT).run();
        var link = ExternalCommand.of("ip", "link", "show", hostVeth).timeout(IP_TIMEOUT).run();
        if (link.exitCode() == 0) {
            var del = ExternalCommand.of("ip", "link", "del", hostVeth).timeout(IP_TIMEOUT).run();
            // the kernel may have removed it between the two commands
            if (del.exitCode() != 0
                    && ExternalCommand.of("ip", "link", "show", hostVeth).timeout(IP_TIMEOUT).run().exitCode() == 0) {
                throw new AssertionError("cannot delete " + hostVeth + ":\n" + del.describe());
            }
        }
        deleted = true;
        if (result.exitCode() != 0 && !result.stderr().contains("No such file")) {
            throw new AssertionError("cannot delete network namespace " + name + ":\n" + result.describe());
        }
    }

    @Override
    public String toString() {
        return "network namespace " + name + " (" + hostVeth + " " + hostIp + " <-> " + nsVeth + " " + nsIp + ")";
    }

    private static void ip(String... args) {
        ExternalCommand.of("ip", args).timeout(IP_TIMEOUT).runSuccessfully();
    }
}
