package io.replstor.nbd.client;

import java.util.Objects;

/** One {@code NBD_REP_SERVER} reply to {@code NBD_OPT_LIST}. The description is empty when the server sent none. */
public record ExportEntry(String name, String description) {
    public ExportEntry {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(description, "description");
    }
}
