package io.replstor.replctl;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.util.Iterator;
import java.util.Map;
import java.util.Set;

/**
 * One event line in text form, like {@code drbdsetup events2}:
 * {@code change connection name:r0 peer:beta connection:Connected peer-role:Secondary}. Type, object,
 * then name and peer, then the other keys in the node's order; '_' in keys becomes '-', {@code time}
 * and null values are left out, and values with spaces are quoted as JSON strings.
 */
final class EventFormat {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Set<String> FIRST = Set.of("time", "type", "object", "name", "peer");

    private EventFormat() {
    }

    /** The text form of a JSON event line; a line that is not a JSON object is returned as is. */
    static String text(String line) {
        JsonNode e;
        try {
            e = JSON.readTree(line);
        } catch (IOException ex) {
            return line;
        }
        if (e == null || !e.isObject()) {
            return line;
        }
        StringBuilder b = new StringBuilder();
        word(b, e.get("type"));
        word(b, e.get("object"));
        pair(b, "name", e.get("name"));
        pair(b, "peer", e.get("peer"));
        for (Iterator<Map.Entry<String, JsonNode>> it = e.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> f = it.next();
            if (!FIRST.contains(f.getKey())) {
                pair(b, f.getKey(), f.getValue());
            }
        }
        return b.toString();
    }

    private static void word(StringBuilder b, JsonNode v) {
        if (v != null && !v.isNull()) {
            sep(b).append(value(v));
        }
    }

    private static void pair(StringBuilder b, String key, JsonNode v) {
        if (v != null && !v.isNull()) {
            sep(b).append(key.replace('_', '-')).append(':').append(value(v));
        }
    }

    private static StringBuilder sep(StringBuilder b) {
        return b.length() == 0 ? b : b.append(' ');
    }

    private static String value(JsonNode v) {
        if (v.isTextual()) {
            String s = v.asText();
            return s.isEmpty() || s.chars().anyMatch(c -> Character.isWhitespace(c) || c == '"') ? v.toString() : s;
        }
        return v.toString(); // numbers, booleans; objects and arrays as compact JSON
    }
}
