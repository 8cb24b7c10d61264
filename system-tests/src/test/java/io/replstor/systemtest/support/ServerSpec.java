package io.replstor.systemtest.support;

import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/** What to serve: the exports and, optionally, TLS. */
public record ServerSpec(List<ExportSpec> exports, Optional<TlsSpec> tls) {
    public ServerSpec {
        exports = List.copyOf(exports);
        if (exports.isEmpty()) {
            throw new IllegalArgumentException("a server needs at least one export");
        }
        Set<String> names = new HashSet<>();
        for (ExportSpec export : exports) {
            if (!names.add(export.name())) {
                throw new IllegalArgumentException("duplicate export name: " + export.name());
            }
        }
    }

    public static ServerSpec of(ExportSpec... exports) {
        return new ServerSpec(List.of(exports), Optional.empty());
    }

    public ServerSpec withTls(TlsSpec settings) {
        return new ServerSpec(exports, Optional.of(settings));
    }
}
