package io.replstor.cluster.store;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import org.apache.ratis.thirdparty.com.google.protobuf.ByteString;

import java.io.IOException;
import java.io.UncheckedIOException;

/**
 * JSON for log entries ({@link StoreCommand}), replies ({@link StoreReply}) and snapshots
 * ({@link Snapshot}). Maps are sorted, so equal states give equal bytes.
 */
final class StoreJson {
    /** Bumped when a snapshot can no longer be read by an older version. */
    static final int SNAPSHOT_FORMAT = 1;

    /** A snapshot file's content. */
    record Snapshot(int format, String cluster, StoreState state) {
    }

    private static final ObjectMapper MAPPER = new ObjectMapper()
            .configure(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS, true)
            .configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false);

    private StoreJson() {
    }

    static ByteString command(StoreCommand c) {
        return write(c);
    }

    static StoreCommand command(ByteString bytes) throws IOException {
        return MAPPER.readValue(bytes.toByteArray(), StoreCommand.class);
    }

    static ByteString reply(StoreReply r) {
        return write(r);
    }

    static StoreReply reply(ByteString bytes) throws IOException {
        return MAPPER.readValue(bytes.toByteArray(), StoreReply.class);
    }

    static ByteString state(StoreState s) {
        return write(s);
    }

    static StoreState state(ByteString bytes) throws IOException {
        return MAPPER.readValue(bytes.toByteArray(), StoreState.class);
    }

    static byte[] snapshot(Snapshot s) {
        try {
            return MAPPER.writerWithDefaultPrettyPrinter().writeValueAsBytes(s);
        } catch (JsonProcessingException e) {
            throw new UncheckedIOException(e);
        }
    }

    static Snapshot snapshot(byte[] bytes) throws IOException {
        return MAPPER.readValue(bytes, Snapshot.class);
    }

    private static ByteString write(Object o) {
        try {
            return ByteString.copyFrom(MAPPER.writeValueAsBytes(o));
        } catch (JsonProcessingException e) {
            // records of strings, numbers and collections always serialize
            throw new UncheckedIOException(e);
        }
    }
}
