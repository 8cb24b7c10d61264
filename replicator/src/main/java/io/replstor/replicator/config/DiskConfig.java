package io.replstor.replicator.config;

import java.nio.file.Path;
import java.util.Objects;
import java.util.Optional;

/**
 * A resource's storage on one node: {@code [resource.on.NODE]}.
 *
 * @param node     the node name
 * @param disk     the backing device or file
 * @param metaDisk the external metadata device, or empty for {@code meta-disk = "internal"}
 *                 (metadata at the end of {@code disk}, which shrinks the usable size)
 */
public record DiskConfig(String node, Path disk, Optional<Path> metaDisk) {

    public DiskConfig {
        Objects.requireNonNull(node, "node");
        Objects.requireNonNull(disk, "disk");
        Objects.requireNonNull(metaDisk, "metaDisk");
    }

    public boolean internalMetadata() {
        return metaDisk.isEmpty();
    }
}
