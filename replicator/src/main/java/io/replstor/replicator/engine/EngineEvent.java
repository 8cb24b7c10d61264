package io.replstor.replicator.engine;

import java.time.Instant;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One line of the event stream, like {@code drbdsetup events2}: an object (resource, connection,
 * peer-device) that exists, appeared, changed or went away, with its current state.
 *
 * @param type   exists | create | change | destroy
 * @param object resource | connection | peer-device
 * @param fields the state, in display order (keys use '_'; names of states are DRBD's)
 */
public record EngineEvent(Instant time, String type, String object, String resource, String peer,
                          Map<String, Object> fields) {

    public EngineEvent {
        fields = Collections.unmodifiableMap(new LinkedHashMap<>(fields));
    }

    /** The JSON shape of the admin API's /events lines. */
    public Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("time", time.toString());
        m.put("type", type);
        m.put("object", object);
        m.put("name", resource);
        if (peer != null) {
            m.put("peer", peer);
        }
        m.putAll(fields);
        return m;
    }

    public EngineEvent withType(String t) {
        return new EngineEvent(time, t, object, resource, peer, fields);
    }
}
