package io.replstor.replctl;

import com.fasterxml.jackson.databind.JsonNode;
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
 * extending regular files sparsely, then writes fresh metadata. Also the "is it up in a running
 * daemon" check that create-md and dump-md make first.
 */
final class MetadataSetup {
    private MetadataSetup() {
    }

    /** What happened to a file create-md sized. */
    record Prepared(Path path, String action, long sizeBytes, long previousBytes) {
        /** "created /x/r0.img: 1GiB + 72KiB (sparse)" etc., or null if the file was used as it was. */
        String describe() {
            return switch (action) {
                case "created" -> "created " + path + " (" + sizeBytes + " bytes, sparse)";
                case "extended" -> "extended " + path + " from " + previousBytes + " to " + sizeBytes
                        + " bytes (sparse)";
                default -> null;
            };
        }
    }

    /** The options create-md uses for {@code resource} on {@code node}. */
    static CreateOptions createOptions(ClusterConfig cluster, NodeConfig node, ResourceConfig resource,
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
    static long internalDeviceBytes(CreateOptions o, long dataBytes) throws MetadataException {
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
     * @throws ReplctlException 1 for a too-small block device or a path that cannot be created
     * @throws MetadataException existing metadata without force, or a layout that does not fit
     */
    static Metadata create(ClusterConfig cluster, NodeConfig node, ResourceConfig resource, DiskConfig disk,
                           boolean force, Consumer<String> log) throws IOException, ReplctlException {
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
    static Prepared ensureSize(Path path, long required, String what) throws IOException, ReplctlException {
        if (!Files.exists(path)) {
            if (path.normalize().startsWith("/dev/")) {
                throw ReplctlException.failed(what + " " + path + " does not exist (a device under /dev is not"
                        + " created as a file; create or activate the device first)");
            }
            Path parent = path.toAbsolutePath().getParent();
            if (parent != null && !Files.isDirectory(parent)) {
                throw ReplctlException.failed(what + " " + path + " does not exist, nor does its directory "
                        + parent + ": create the directory first");
            }
            Files.createFile(path);
            try (RandomAccessFile f = new RandomAccessFile(path.toFile(), "rw")) {
                f.setLength(required); // ftruncate: one hole
            }
            return new Prepared(path, "created", required, 0);
        }
        if (Files.isDirectory(path)) {
            throw ReplctlException.failed(what + " " + path + " is a directory, not a file or block device");
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
            throw ReplctlException.failed(what + " " + path + " is a block device of " + size + " bytes; "
                    + required + " bytes are required (the resource's size plus its metadata): use a larger device");
        }
        return new Prepared(path, "kept", size, size);
    }

    /**
     * Refuses (exit 1) if a daemon answers on the node's admin socket with {@code resource} up. A
     * missing or silent socket means no daemon holds it: the caller proceeds.
     */
    static void refuseIfUp(NodeConfig node, String resource, String verb) throws ReplctlException {
        Path socket = node.admin();
        if (!Files.exists(socket)) {
            return;
        }
        AdminClient.Response r;
        try {
            r = AdminClient.get(socket, "/status", 3_000);
        } catch (AdminClient.AdminException e) {
            return;
        }
        JsonNode s = r.ok() ? r.json() : null;
        if (s == null) {
            return;
        }
        for (JsonNode res : s.path("resources")) {
            if (resource.equals(res.path("name").asText()) && res.path("up").asBoolean(false)) {
                throw ReplctlException.failed("resource '" + resource + "' is up on node " + node.name()
                        + " (repld pid " + s.path("pid").asText("?") + ", admin socket " + socket + "): take it down"
                        + " first (replctl down " + resource + ") before " + verb);
            }
        }
    }
}
