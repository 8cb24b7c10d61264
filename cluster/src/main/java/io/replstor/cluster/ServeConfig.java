package io.replstor.cluster;

import io.replstor.common.Sizes;
import io.replstor.nbd.server.AddressMatcher;
import io.replstor.nbd.server.TlsPolicy;
import org.tomlj.Toml;
import org.tomlj.TomlArray;
import org.tomlj.TomlParseError;
import org.tomlj.TomlParseResult;
import org.tomlj.TomlPosition;
import org.tomlj.TomlTable;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * The NBD part of the configuration file:
 * <pre>
 * [nbd]
 * listen = "127.0.0.1:10809"      # host:port
 * tls = "off"                     # off | allow | require
 * tls-cert = "/etc/replstor/server-cert.pem"
 * tls-key = "/etc/replstor/server-key.pem"      # PKCS#8 PEM
 * tls-ca = "/etc/replstor/ca-cert.pem"          # with tls-verify-client
 * tls-verify-client = false
 * io-threads = 8
 * max-payload = "32MiB"
 *
 * [[export]]
 * name = "demo"
 * path = "/var/lib/replstor/demo.img"
 * size = "1GiB"                   # creates a missing file, sparse
 * readonly = false
 * description = "demo volume"
 * allow = ["127.0.0.0/8", "::1"]  # client networks; absent = everyone
 * </pre>
 */
public record ServeConfig(String listen, TlsPolicy tls, Path tlsCert, Path tlsKey, Path tlsCa,
                          boolean tlsVerifyClient, Integer ioThreads, Long maxPayload, List<ExportSpec> exports) {

    private static final Set<String> NBD_KEYS = Set.of("listen", "tls", "tls-cert", "tls-key", "tls-ca",
            "tls-verify-client", "io-threads", "max-payload");
    private static final Set<String> EXPORT_KEYS = Set.of("name", "path", "size", "readonly", "description", "allow");
    private static final Set<String> TOP_KEYS = Set.of("nbd", "export");

    public static ServeConfig load(Path file) throws ConfigException {
        TomlParseResult toml;
        try {
            toml = Toml.parse(file);
        } catch (IOException e) {
            throw new ConfigException(file + ": cannot read: " + e.getMessage());
        }
        if (toml.hasErrors()) {
            TomlParseError e = toml.errors().get(0);
            throw new ConfigException(file + ":" + e.position().line() + ":" + e.position().column() + ": "
                    + e.getMessage());
        }
        Reader r = new Reader(file);
        r.onlyKeys(toml, "", TOP_KEYS);
        TomlTable nbd = r.table(toml, "nbd");
        String listen = null;
        TlsPolicy tls = TlsPolicy.OFF;
        Path cert = null;
        Path key = null;
        Path ca = null;
        boolean verify = false;
        Integer ioThreads = null;
        Long maxPayload = null;
        if (nbd != null) {
            r.onlyKeys(nbd, "nbd.", NBD_KEYS);
            listen = r.string(nbd, "nbd.", "listen");
            String t = r.string(nbd, "nbd.", "tls");
            if (t != null) {
                try {
                    tls = TlsPolicy.parse(t);
                } catch (IllegalArgumentException e) {
                    throw r.error(nbd, "nbd.", "tls", e.getMessage());
                }
            }
            cert = r.path(nbd, "nbd.", "tls-cert");
            key = r.path(nbd, "nbd.", "tls-key");
            ca = r.path(nbd, "nbd.", "tls-ca");
            Boolean v = r.bool(nbd, "nbd.", "tls-verify-client");
            verify = v != null && v;
            Long threads = r.integer(nbd, "nbd.", "io-threads");
            if (threads != null) {
                if (threads < 1 || threads > 1024) {
                    throw r.error(nbd, "nbd.", "io-threads", "must be between 1 and 1024");
                }
                ioThreads = threads.intValue();
            }
            maxPayload = r.size(nbd, "nbd.", "max-payload");
        }
        List<ExportSpec> exports = new ArrayList<>();
        TomlArray arr = null;
        if (toml.contains("export")) {
            if (!toml.isArray("export")) {
                throw r.error(toml, "", "export", "must be an array of tables: write [[export]]");
            }
            arr = toml.getArray("export");
        }
        for (int i = 0; arr != null && i < arr.size(); i++) {
            if (!(arr.get(i) instanceof TomlTable t)) {
                throw new ConfigException(file + ": export[" + i + "] must be a table: write [[export]]");
            }
            String prefix = "export[" + i + "].";
            r.onlyKeys(t, prefix, EXPORT_KEYS);
            String name = r.string(t, prefix, "name");
            if (name == null) {
                throw new ConfigException(file + ":" + r.line(t) + ": " + prefix + "name is missing");
            }
            Path path = r.path(t, prefix, "path");
            if (path == null) {
                throw new ConfigException(file + ":" + r.line(t) + ": " + prefix + "path is missing");
            }
            Long size = r.size(t, prefix, "size");
            Boolean ro = r.bool(t, prefix, "readonly");
            String desc = r.string(t, prefix, "description");
            List<AddressMatcher> allow = new ArrayList<>();
            if (t.contains("allow")) {
                if (!t.isArray("allow")) {
                    throw r.error(t, prefix, "allow", "must be an array of networks, e.g. [\"127.0.0.0/8\"]");
                }
                TomlArray nets = t.getArray("allow");
                for (int j = 0; j < nets.size(); j++) {
                    try {
                        allow.add(AddressMatcher.parse(String.valueOf(nets.get(j))));
                    } catch (IllegalArgumentException e) {
                        throw r.error(t, prefix, "allow", e.getMessage());
                    }
                }
            }
            exports.add(new ExportSpec(name, path, size == null ? 0 : size, ro != null && ro,
                    desc == null ? "" : desc, allow));
        }
        return new ServeConfig(listen, tls, cert, key, ca, verify, ioThreads, maxPayload, exports);
    }

    /** Typed access to keys, with errors that name file, line and key. */
    private record Reader(Path file) {
        ConfigException error(TomlTable t, String prefix, String key, String what) {
            TomlPosition pos = t.inputPositionOf(key);
            String where = pos == null ? file.toString() : file + ":" + pos.line();
            return new ConfigException(where + ": " + prefix + key + ": " + what);
        }

        int line(TomlTable t) {
            for (String k : t.keySet()) {
                TomlPosition p = t.inputPositionOf(k);
                if (p != null) {
                    return p.line();
                }
            }
            return 0;
        }

        void onlyKeys(TomlTable t, String prefix, Set<String> allowed) throws ConfigException {
            for (String k : t.keySet()) {
                if (!allowed.contains(k)) {
                    throw error(t, prefix, k, "unknown key (allowed: " + String.join(", ", new java.util.TreeSet<>(allowed)) + ")");
                }
            }
        }

        TomlTable table(TomlTable t, String key) throws ConfigException {
            if (!t.contains(key)) {
                return null;
            }
            if (!t.isTable(key)) {
                throw error(t, "", key, "must be a table: write [" + key + "]");
            }
            return t.getTable(key);
        }

        String string(TomlTable t, String prefix, String key) throws ConfigException {
            if (!t.contains(key)) {
                return null;
            }
            if (!t.isString(key)) {
                throw error(t, prefix, key, "must be a string in quotes");
            }
            return t.getString(key);
        }

        Path path(TomlTable t, String prefix, String key) throws ConfigException {
            String s = string(t, prefix, key);
            if (s != null && s.isEmpty()) {
                throw error(t, prefix, key, "must not be empty");
            }
            return s == null ? null : Path.of(s);
        }

        Boolean bool(TomlTable t, String prefix, String key) throws ConfigException {
            if (!t.contains(key)) {
                return null;
            }
            if (!t.isBoolean(key)) {
                throw error(t, prefix, key, "must be true or false");
            }
            return t.getBoolean(key);
        }

        Long integer(TomlTable t, String prefix, String key) throws ConfigException {
            if (!t.contains(key)) {
                return null;
            }
            if (!t.isLong(key)) {
                throw error(t, prefix, key, "must be an integer");
            }
            return t.getLong(key);
        }

        /** A size: an integer number of bytes, or a string such as "1GiB". */
        Long size(TomlTable t, String prefix, String key) throws ConfigException {
            if (!t.contains(key)) {
                return null;
            }
            long v;
            if (t.isLong(key)) {
                v = t.getLong(key);
            } else if (t.isString(key)) {
                try {
                    v = Sizes.parse(t.getString(key));
                } catch (IllegalArgumentException e) {
                    throw error(t, prefix, key, e.getMessage());
                }
            } else {
                throw error(t, prefix, key, "must be a size such as 1073741824 or \"1GiB\"");
            }
            if (v <= 0) {
                throw error(t, prefix, key, "must be positive");
            }
            return v;
        }
    }
}
