package io.replstor.nbd.server;

import io.replstor.common.io.BlockDevice;

import java.util.List;
import java.util.Objects;

/**
 * One export: a name clients ask for, the device behind it, an optional description, and the client
 * networks allowed to connect (empty: everyone). Read-only when the device is.
 */
public record NbdExport(String name, String description, BlockDevice device, List<AddressMatcher> allow) {
    public NbdExport {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(device, "device");
        if (name.getBytes(java.nio.charset.StandardCharsets.UTF_8).length > io.replstor.nbd.Nbd.MAX_STRING_BYTES
                || name.indexOf('\0') >= 0) {
            throw new IllegalArgumentException("export name must be at most 4096 bytes of UTF-8 without NUL");
        }
        description = description == null ? "" : description;
        allow = List.copyOf(allow == null ? List.of() : allow);
    }

    public boolean readOnly() {
        return device.readOnly();
    }
}
