package io.replstor.replicator.config;

import io.replstor.common.Sizes;
import org.tomlj.TomlArray;
import org.tomlj.TomlPosition;
import org.tomlj.TomlTable;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Pattern;

/**
 * Typed access to a parsed TOML document that collects problems instead of stopping at the first,
 * each as {@code FILE:LINE: KEY: what}. Every getter returns null when the key is absent or its
 * value is invalid (a problem is then recorded), so callers fall back to defaults only for absent
 * keys and skip cross-checks on values that failed.
 *
 * <p>Keys are looked up as single path elements, never as dotted paths, so a node called
 * {@code "alpha.example.com"} is one key.
 */
final class TomlReader {
    private static final Pattern BARE_KEY = Pattern.compile("[A-Za-z0-9_-]+");

    private record Problem(int line, int order, String text) {
    }

    private final String file;
    private final List<Problem> problems = new ArrayList<>();

    TomlReader(String file) {
        this.file = file;
    }

    boolean hasProblems() {
        return !problems.isEmpty();
    }

    int problemCount() {
        return problems.size();
    }

    /** The problems in file order (those without a line first). */
    List<String> problems() {
        return problems.stream().sorted(Comparator.comparingInt(Problem::line).thenComparingInt(Problem::order))
                .map(Problem::text).toList();
    }

    // ---- reporting ----

    /** A problem at {@code line} (0 = no line known) about the key path {@code key}. */
    void problem(int line, String key, String what) {
        String where = line > 0 ? file + ":" + line : file;
        problems.add(new Problem(line, problems.size(), where + ": " + key + ": " + what));
    }

    /** A problem with {@code key} of table {@code t}, at the key's line. */
    void problem(TomlTable t, String prefix, String key, String what) {
        problem(line(t, key), prefix + keyPart(key), what);
    }

    static int line(TomlTable t, String key) {
        TomlPosition pos = t.inputPositionOf(List.of(key));
        return pos == null ? 0 : pos.line();
    }

    static int line(TomlArray a, int index) {
        TomlPosition pos = a.inputPositionOf(index);
        return pos == null ? 0 : pos.line();
    }

    /** A key as it appears in a path: bare if it can be, else quoted. */
    static String keyPart(String key) {
        return BARE_KEY.matcher(key).matches() ? key : "\"" + key.replace("\"", "\\\"") + "\"";
    }

    // ---- structure ----

    void onlyKeys(TomlTable t, String prefix, Set<String> allowed) {
        for (String k : t.keySet()) {
            if (!allowed.contains(k)) {
                problem(t, prefix, k, "unknown key (allowed: " + String.join(", ", new TreeSet<>(allowed)) + ")");
            }
        }
    }

    boolean has(TomlTable t, String key) {
        return t.contains(List.of(key));
    }

    /** A required key: records "missing" at {@code tableLine} if absent. */
    boolean require(TomlTable t, String prefix, String key, int tableLine, String what) {
        if (has(t, key)) {
            return true;
        }
        problem(tableLine, prefix + key, "missing (" + what + ")");
        return false;
    }

    TomlTable table(TomlTable t, String prefix, String key, String howToWrite) {
        if (!has(t, key)) {
            return null;
        }
        Object v = t.get(List.of(key));
        if (v instanceof TomlTable table) {
            return table;
        }
        problem(t, prefix, key, "must be a table: write " + howToWrite);
        return null;
    }

    /** An array of tables ({@code [[key]]}), or null if absent or not one. */
    TomlArray tables(TomlTable t, String key) {
        if (!has(t, key)) {
            return null;
        }
        Object v = t.get(List.of(key));
        if (v instanceof TomlArray a && a.toList().stream().allMatch(e -> e instanceof TomlTable)) {
            return a;
        }
        problem(t, "", key, "must be an array of tables: write [[" + key + "]] before each entry");
        return null;
    }

    // ---- values ----

    String string(TomlTable t, String prefix, String key, String what) {
        if (!has(t, key)) {
            return null;
        }
        Object v = t.get(List.of(key));
        if (v instanceof String s) {
            return s;
        }
        problem(t, prefix, key, "must be a string in quotes (" + what + ")");
        return null;
    }

    Boolean bool(TomlTable t, String prefix, String key) {
        if (!has(t, key)) {
            return null;
        }
        Object v = t.get(List.of(key));
        if (v instanceof Boolean b) {
            return b;
        }
        problem(t, prefix, key, "must be true or false (without quotes)");
        return null;
    }

    /** An integer within [min, max]; {@code what} names the unit and default for the message. */
    Integer integer(TomlTable t, String prefix, String key, long min, long max, String what) {
        if (!has(t, key)) {
            return null;
        }
        Object v = t.get(List.of(key));
        if (!(v instanceof Long l)) {
            problem(t, prefix, key, "must be an integer without quotes: " + what);
            return null;
        }
        if (l < min || l > max) {
            problem(t, prefix, key, l + " is out of range: " + what);
            return null;
        }
        return l.intValue();
    }

    /** A size: bytes as an integer, or a string with a binary unit ("10GiB"). */
    Long size(TomlTable t, String prefix, String key, String what) {
        if (!has(t, key)) {
            return null;
        }
        Object v = t.get(List.of(key));
        try {
            if (v instanceof Long l) {
                return l;
            }
            if (v instanceof String s) {
                return Sizes.parse(s);
            }
        } catch (IllegalArgumentException e) {
            problem(t, prefix, key, e.getMessage() + "; " + what);
            return null;
        }
        problem(t, prefix, key, "must be a size such as \"10GiB\" or a number of bytes; " + what);
        return null;
    }

    /**
     * A rate in bytes per second, written with a unit as DRBD writes it ("250K", "100M", "1G",
     * optionally "/s"). A bare number is refused: DRBD reads it as KiB/s, a reader might read bytes.
     */
    Long rate(TomlTable t, String prefix, String key, long min, long max, String what) {
        if (!has(t, key)) {
            return null;
        }
        Object v = t.get(List.of(key));
        if (!(v instanceof String s) || !s.trim().matches("(?i).*\\d\\s*[kmg](i?b)?(/s)?")) {
            problem(t, prefix, key, "must be a rate with a unit in quotes, e.g. \"250K\" or \"100M\" (bytes per second,"
                    + " binary units); " + what);
            return null;
        }
        long bytes;
        try {
            bytes = Sizes.parse(s.trim().replaceFirst("(?i)/s$", ""));
        } catch (IllegalArgumentException e) {
            problem(t, prefix, key, e.getMessage() + "; " + what);
            return null;
        }
        if (bytes < min || bytes > max) {
            problem(t, prefix, key, s + " is out of range: " + what);
            return null;
        }
        return bytes;
    }
}
