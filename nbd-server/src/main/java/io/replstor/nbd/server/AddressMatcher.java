package io.replstor.nbd.server;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.List;

/** One allowed client network, {@code 10.0.0.0/8}, {@code 127.0.0.1} or {@code ::1/128}. */
public record AddressMatcher(byte[] network, int prefixBits, String text) {

    public static AddressMatcher parse(String text) {
        String t = text.trim();
        int slash = t.indexOf('/');
        String host = slash < 0 ? t : t.substring(0, slash);
        if (!host.matches("[0-9a-fA-F:.]+")) {
            throw new IllegalArgumentException("not an IP address or network: '" + text + "' (expected e.g. 10.0.0.0/8 or ::1)");
        }
        byte[] addr;
        try {
            addr = InetAddress.getByName(host).getAddress();
        } catch (UnknownHostException e) {
            throw new IllegalArgumentException("not an IP address or network: '" + text + "'");
        }
        int bits = addr.length * 8;
        if (slash >= 0) {
            try {
                bits = Integer.parseInt(t.substring(slash + 1));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("bad prefix length in '" + text + "'");
            }
            if (bits < 0 || bits > addr.length * 8) {
                throw new IllegalArgumentException("prefix length out of range in '" + text + "'");
            }
        }
        return new AddressMatcher(addr, bits, t);
    }

    public boolean matches(InetAddress address) {
        byte[] a = address.getAddress();
        if (a.length != network.length) {
            return false;
        }
        int full = prefixBits / 8;
        for (int i = 0; i < full; i++) {
            if (a[i] != network[i]) {
                return false;
            }
        }
        int rest = prefixBits % 8;
        if (rest == 0) {
            return true;
        }
        int mask = (0xff << (8 - rest)) & 0xff;
        return (a[full] & mask) == (network[full] & mask);
    }

    /** An empty list allows everyone. */
    public static boolean allowed(List<AddressMatcher> allow, InetAddress address) {
        if (allow.isEmpty()) {
            return true;
        }
        for (AddressMatcher m : allow) {
            if (m.matches(address)) {
                return true;
            }
        }
        return false;
    }

    @Override
    public String toString() {
        return text;
    }
}
