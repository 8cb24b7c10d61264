package io.replstor.replicator.meta;

import io.replstor.common.io.BlockDevice;
import io.replstor.common.io.FileBackingStore;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Where a volume's data and metadata live: one backing device with the metadata at its end
 * (internal), or a backing device plus a separate metadata device (external). Devices passed in
 * stay the caller's; devices opened here from paths are closed by {@link #close()} (which
 * {@link Metadata#close()} calls).
 */
public final class MetaDisk implements AutoCloseable {
    private final BlockDevice data;
    private final BlockDevice meta;
    private final boolean owned;

    private MetaDisk(BlockDevice data, BlockDevice meta, boolean owned) {
        this.data = data;
        this.meta = meta;
        this.owned = owned;
    }

    public static MetaDisk internal(BlockDevice backing) {
        return new MetaDisk(backing, backing, false);
    }

    public static MetaDisk external(BlockDevice backing, BlockDevice metaDevice) {
        if (backing == metaDevice) {
            throw new IllegalArgumentException("external metadata needs a device of its own, not the backing device");
        }
        if (backing.readOnly() != metaDevice.readOnly()) {
            throw new IllegalArgumentException("the backing and metadata devices must both be read-only or both writable");
        }
        return new MetaDisk(backing, metaDevice, false);
    }

    /** Opens a backing file or block device with internal metadata; {@link #close()} closes it. */
    public static MetaDisk openInternal(String name, Path backing, boolean readOnly) throws IOException {
        return new MetaDisk(FileBackingStore.open(name, backing, readOnly, 0), null, true);
    }

    /**
     * Opens a backing device and an external metadata file or device; {@link #close()} closes both.
     *
     * @param createMetaSizeBytes if positive and the metadata file does not exist, create it sparse
     *                            with this size (see {@link MetadataGeometry#metadataSizeBytes})
     */
    public static MetaDisk openExternal(String name, Path backing, Path metaPath, boolean readOnly,
                                        long createMetaSizeBytes) throws IOException {
        FileBackingStore data = FileBackingStore.open(name, backing, readOnly, 0);
        try {
            long create = Files.exists(metaPath) ? 0 : createMetaSizeBytes;
            return new MetaDisk(data, FileBackingStore.open(name + " metadata", metaPath, readOnly, create), true);
        } catch (IOException | RuntimeException e) {
            data.close();
            throw e;
        }
    }

    /** The device whose first {@code dataSizeBytes} hold the volume's data. */
    public BlockDevice data() {
        return data;
    }

    /** The device whose end holds the metadata area (the backing device for internal metadata). */
    public BlockDevice meta() {
        return meta == null ? data : meta;
    }

    public boolean external() {
        return meta != null && meta != data;
    }

    public boolean readOnly() {
        return meta().readOnly();
    }

    /** "internal metadata on /var/lib/r0.img" or "external metadata on /dev/md0 (data /dev/sdb)". */
    public String describe() {
        return external()
                ? "external metadata on " + location(meta()) + " (data " + location(data) + ")"
                : "internal metadata on " + location(data);
    }

    /** The path of a file-backed device, else its name. */
    public String metaLocation() {
        return location(meta());
    }

    static String location(BlockDevice d) {
        return d instanceof FileBackingStore f ? f.path().toString() : d.name();
    }

    @Override
    public void close() {
        if (owned) {
            data.close();
            if (external()) {
                meta.close();
            }
        }
    }
}
