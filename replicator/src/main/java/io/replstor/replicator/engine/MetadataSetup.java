package io.replstor.replicator.engine;

import io.replstor.common.io.FileBackingStore;
import io.replstor.replicator.config.ClusterConfig;
import io.replstor.replicator.config.DiskConfig;
import io.replstor.replicator.config.NodeConfig;
import io.replstor.replicator.config.ResourceConfig;
import io.replstor.replicator.meta.CreateOptions;
import io.replstor.replicator.meta.MetaDisk;
import io.replstor.replicator.meta.Metadata;
import io.replstor.replicator.meta.MetadataException;
import io.replstor.replicator.meta.MetadataGeometry;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * create-md for one resource on one node, as the cluster file describes it: sizes the backing file
 * (and the external metadata file) so the data area holds the resource's {@code size}, creating or
 * extending regular files sparsely, then writes fresh metadata. Used by {@code replctl create-md},
 * the demo, and {@code repld --create-missing-disks} ({@link #createMissing}).
 */
public final class MetadataSetup {
    private MetadataSetup() {
    }

    /** What happened to a file create-md sized. */
    public record Prepared(Path path, String action, long sizeBytes, long previousBytes) {
        /** "created /x/r0.img: 1GiB + 72KiB (sparse)" etc., or null if the file was used as it was. */
        public String describe() {
            return switch (action) {
                case "created" -> "created " + path + " (" + sizeBytes + " bytes, sparse)";
                case "extended" -> "extended " + path + " from " + previousBytes + " to " + sizeBytes
                        + " bytes (sparse)";
                default -> null;
            };
        }
    }

    /** The options create-md uses for {@code resource} on {@code node}. */
    public static CreateOptions createOptions(ClusterConfig cluster, NodeConfig node, ResourceConfig resource,
                                       boolean force) {
        List<Integer> peers = new ArrayList<>();
        cluster.peersOf(node.name()).forEach(p -> peers.add(p.id()));
        int ring = MetadataGeometry.DEFAULT_AL_RING_BLOCKS;
        while (MetadataGeometry.maxAlExtents(ring) < resource.alExtents() && ring < MetadataGeometry.MAX_AL_RING_BLOCKS) {
            ring++; // a large al-extents needs a longer ring to be restorable after a crash
        }
        return CreateOptions.of(resource.name(), node.id()).withMaxPeers(resource.maxPeers()).withAlRingBlocks(ring)
                .withAlExtents(resource.alExtents()).withPeerNodeIds(peers).withForce(force);
    }

    /**
     * The smallest backing device whose internal-metadata layout leaves at least {@code dataBytes} of
     * data (the bitmap is sized for the whole device, so this is found by stepping up).
     */
    public static long internalDeviceBytes(CreateOptions o, long dataBytes) throws MetadataException {
        long device = dataBytes + MetadataGeometry.metadataSizeBytes(dataBytes, o.maxPeers(), o.alRingBlocks());
        while (true) {
            long data = MetadataGeometry.forInternal(o, device).dataSizeBytes();
            if (data >= dataBytes) {
                return device;
            }
            device += dataBytes - data;
        }
    }

    /**
     * Sizes the files and writes the metadata; {@code log} gets a line per file created or extended.
     * The returned metadata is open read-write: close it.
     *
     * @throws MetadataException existing metadata without force, or a layout that does not fit
     * @throws IOException a too-small block device, a path that cannot be created, or an I/O error
     */
    public static Metadata create(ClusterConfig cluster, NodeConfig node, ResourceConfig resource, DiskConfig disk,
                                  boolean force, Consumer<String> log) throws IOException {
        CreateOptions o = createOptions(cluster, node, resource, force);
        long size = resource.sizeBytes();
        if (disk.internalMetadata()) {
            Prepared p = ensureSize(disk.disk(), internalDeviceBytes(o, size), "backing device");
            report(p, log);
            return Metadata.create(MetaDisk.openInternal(resource.name(), disk.disk(), false), o);
        }
        Path metaPath = disk.metaDisk().orElseThrow();
        Prepared data = ensureSize(disk.disk(), size, "backing device");
        report(data, log);
        long dataBytes = Math.max(size, data.sizeBytes());
        Prepared meta = ensureSize(metaPath, MetadataGeometry.metadataSizeBytes(dataBytes, o.maxPeers(),
                o.alRingBlocks()), "meta-disk");
        report(meta, log);
        return Metadata.create(MetaDisk.openExternal(resource.name(), disk.disk(), metaPath, false, 0), o);
    }

    private static void report(Prepared p, Consumer<String> log) {
        String d = p.describe();
        if (d != null) {
            log.accept(d);
        }
    }

    /**
     * Makes {@code path} at least {@code required} bytes: a missing path becomes a sparse regular
     * file, a short regular file is extended sparsely, a short block device is an error.
     */
    public static Prepared ensureSize(Path path, long required, String what) throws IOException {
        if (!Files.exists(path)) {
            if (path.normalize().startsWith("/dev/")) {
                throw new IOException(what + " " + path + " does not exist (a device under /dev is not"
                        + " created as a file; create or activate the device first)");
            }
            Path parent = path.toAbsolutePath().getParent();
            if (parent != null && !Files.isDirectory(parent)) {
                throw new IOException(what + " " + path + " does not exist, nor does its directory "
                        + parent + ": create the directory first");
            }
            Files.createFile(path);
            try (RandomAccessFile f = new RandomAccessFile(path.toFile(), "rw")) {
                f.setLength(required); // ftruncate: one hole
            }
            return new Prepared(path, "created", required, 0);
        }
        if (Files.isDirectory(path)) {
            throw new IOException(what + " " + path + " is a directory, not a file or block device");
        }
        if (Files.isRegularFile(path)) {
            long size = Files.size(path);
            if (size >= required) {
                return new Prepared(path, "kept", size, size);
            }
            try (RandomAccessFile f = new RandomAccessFile(path.toFile(), "rw")) {
                f.setLength(required);
            }
            return new Prepared(path, "extended", required, size);
        }
        long size;
        try (FileBackingStore dev = FileBackingStore.open(path.toString(), path, true, 0)) {
            size = dev.sizeBytes();
        }
        if (size < required) {
            throw new IOException(what + " " + path + " is a block device of " + size + " bytes; "
                    + required + " bytes are required (the resource's size plus its metadata): use a larger device");
        }
        return new Prepared(path, "kept", size, size);
    }

    /** What {@link #createMissing} did about one resource of the node. */
    public record Missing(String resource, Kind kind, String message) {
        public enum Kind {
            /** The backing file did not exist: created sparse, with fresh metadata. */
            CREATED,
            /** Missing, but not created here (a device under /dev, or external metadata that exists). */
            SKIPPED,
            /** Missing, and creating it failed. */
            FAILED
        }
    }

    /**
     * {@code repld --create-missing-disks}: for each resource of {@code nodeName} whose backing file
     * does not exist yet, creates the file (sparse) with fresh metadata, as {@code replctl create-md}
     * would; so a new node (an appliance's first boot) needs no separate create-md step. A backing
     * file or device that exists is never touched, whatever it holds: metadata on a disk that may
     * hold data is the admin's {@code create-md}. Not created either: a missing path under
     * {@code /dev} (a device the admin must provide), and a missing backing file whose external
     * meta-disk exists (they belong together). A failure for one resource does not stop the
     * others; the daemon then reports that resource when it opens it.
     *
     * @return one entry per resource whose backing file was missing, in the cluster file's order
     */
    public static List<Missing> createMissing(ClusterConfig cluster, String nodeName) {
        NodeConfig node = cluster.node(nodeName).orElseThrow(
                () -> new IllegalArgumentException("no node named '" + nodeName + "'"));
        List<Missing> done = new ArrayList<>();
        for (ResourceConfig r : cluster.resources()) {
            DiskConfig disk = r.on(nodeName).orElse(null);
            if (disk == null || Files.exists(disk.disk())) {
                continue;
            }
            String who = "resource " + r.name() + " on node " + nodeName;
            if (disk.disk().normalize().startsWith("/dev/")) {
                done.add(new Missing(r.name(), Missing.Kind.SKIPPED, who + ": backing device " + disk.disk()
                        + " does not exist; a device is not created as a file"));
                continue;
            }
            Path meta = disk.metaDisk().orElse(null);
            if (meta != null && Files.exists(meta)) {
                done.add(new Missing(r.name(), Missing.Kind.SKIPPED, who + ": backing file " + disk.disk()
                        + " does not exist but its meta-disk " + meta + " does; leaving both alone"
                        + " (replctl create-md " + r.name() + " --force makes new metadata)"));
                continue;
            }
            List<String> files = new ArrayList<>();
            try {
                Path parent = disk.disk().toAbsolutePath().getParent();
                if (parent != null) {
                    Files.createDirectories(parent);
                }
                try (Metadata md = create(cluster, node, r, disk, false, files::add)) {
                    done.add(new Missing(r.name(), Missing.Kind.CREATED, who + ": new backing file: "
                            + String.join(", ", files) + "; fresh metadata (" + md.describe() + ")"));
                }
            } catch (IOException | RuntimeException e) {
                removeQuietly(disk.disk()); // both were missing: leave nothing half-made behind
                if (meta != null) {
                    removeQuietly(meta);
                }
                done.add(new Missing(r.name(), Missing.Kind.FAILED, who + ": creating " + disk.disk()
                        + " with fresh metadata failed: " + (e.getMessage() == null ? e.toString() : e.getMessage())));
            }
        }
        return done;
    }

    private static void removeQuietly(Path p) {
        try {
            Files.deleteIfExists(p);
        } catch (IOException e) {
            // reported with the failure that led here: the file is what the admin then finds
        }
    }
}
