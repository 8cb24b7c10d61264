package io.replstor.replicator.config;

import java.net.InetSocketAddress;
import java.util.Locale;

/**
 * A listen/connect address as written in the configuration: {@code host:port}, with IPv6 literals in
 * brackets ({@code [::1]:7789}). Not resolved here: the file must parse on a machine that cannot
 * resolve the other nodes' names.
 */
public record HostPort(String host, int port) {

    public HostPort {
        if (host == null || host.isEmpty()) {
            throw new IllegalArgumentException("host is empty");
        }
        if (port < 1 || port > 65535) {
            throw new IllegalArgumentException("port " + port + " is out of range 1-65535");
        }
    }

    /** @throws IllegalArgumentException saying what is expected */
    public static HostPort parse(String text) {
        String expected = "expected host:port, e.g. \"10.0.0.1:7789\", \"alpha.example.com:7789\" or \"[::1]:7789\"";
        int colon = text.lastIndexOf(':');
        if (colon <= 0 || colon == text.length() - 1) {
            throw new IllegalArgumentException("'" + text + "' is not host:port (" + expected + ")");
        }
        String host = text.substring(0, colon);
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
        } else if (host.contains(":")) {
            throw new IllegalArgumentException("'" + text + "': write an IPv6 address in brackets (" + expected + ")");
        }
        if (host.isEmpty() || host.chars().anyMatch(c -> Character.isWhitespace(c) || c == '[' || c == ']')) {
            throw new IllegalArgumentException("'" + text + "' has no valid host (" + expected + ")");
        }
        int port;
        try {
            port = Integer.parseInt(text.substring(colon + 1));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("'" + text + "' has no numeric port (" + expected + ")");
        }
        if (port < 1 || port > 65535) {
            throw new IllegalArgumentException("'" + text + "': port " + port + " is out of range 1-65535");
        }
        return new HostPort(host, port);
    }

    /** The socket address, resolved now (binding needs a resolved one; connecting resolves on each call). */
    public InetSocketAddress toSocketAddress() {
        return new InetSocketAddress(host, port);
    }

    /** Same endpoint, ignoring case of host names. */
    boolean sameEndpoint(HostPort other) {
        return port == other.port && host.toLowerCase(Locale.ROOT).equals(other.host.toLowerCase(Locale.ROOT));
    }

    /** The configuration spelling. */
    @Override
    public String toString() {
        return (host.contains(":") ? "[" + host + "]" : host) + ":" + port;
    }
}
