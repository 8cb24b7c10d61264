package io.replstor.cluster;

import io.replstor.common.Sizes;
import io.replstor.nbd.server.AddressMatcher;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * One export as configured: {@code NAME=PATH[,size=1GiB][,readonly][,description=TEXT][,allow=NET;NET]}
 * on the command line, or an {@code [[export]]} table in the configuration file.
 */
public record ExportSpec(String name, Path path, long sizeBytes, boolean readOnly, String description,
                         List<AddressMatcher> allow) {

    public static ExportSpec parse(String spec) {
        int eq = spec.indexOf('=');
        if (eq <= 0) {
            throw new IllegalArgumentException("--export '" + spec
                    + "': expected NAME=PATH[,size=SIZE][,readonly][,description=TEXT][,allow=NET;NET]");
        }
        String name = spec.substring(0, eq);
        String[] parts = spec.substring(eq + 1).split(",");
        if (parts[0].isEmpty()) {
            throw new IllegalArgumentException("--export '" + spec + "': the path is empty");
        }
        long size = 0;
        boolean readOnly = false;
        String description = "";
        List<AddressMatcher> allow = new ArrayList<>();
        for (int i = 1; i < parts.length; i++) {
            String p = parts[i];
            int e = p.indexOf('=');
            String key = e < 0 ? p : p.substring(0, e);
            String value = e < 0 ? "" : p.substring(e + 1);
            try {
                switch (key) {
                    case "size" -> size = Sizes.parse(value);
                    case "readonly", "ro" -> readOnly = true;
                    case "description" -> description = value;
                    case "allow" -> {
                        for (String net : value.split(";")) {
                            allow.add(AddressMatcher.parse(net));
                        }
                    }
                    default -> throw new IllegalArgumentException("unknown option '" + key
                            + "' (allowed: size, readonly, description, allow)");
                }
            } catch (IllegalArgumentException ex) {
                throw new IllegalArgumentException("--export '" + spec + "': " + ex.getMessage(), ex);
            }
        }
        return new ExportSpec(name, Path.of(parts[0]), size, readOnly, description, allow);
    }
}
