package io.replstor.systemtest.support;

import io.replstor.common.Sizes;
import java.nio.file.Path;

/**
 * One export of the server under test, as {@code bin/repld serve --export NAME=PATH[,size=SIZE][,readonly]
 * [,description=TEXT]} takes it.
 *
 * @param sizeBytes 0 to serve an existing file at its size; otherwise the size of a file the server creates sparse
 * @param description null for none
 */
public record ExportSpec(String name, Path path, long sizeBytes, boolean readOnly, String description) {
    public ExportSpec {
        if (name.isEmpty() || name.contains("=") || name.contains(",") || name.contains("/")) {
            throw new IllegalArgumentException("export name must be non-empty without '=', ',' or '/': '" + name + "'");
        }
        if (!path.isAbsolute()) {
            throw new IllegalArgumentException("export path must be absolute: " + path);
        }
        if (sizeBytes < 0) {
            throw new IllegalArgumentException("export size must be >= 0: " + sizeBytes);
        }
        if (description != null && description.contains(",")) {
            throw new IllegalArgumentException("the --export syntax cannot carry ',' in a description: " + description);
        }
    }

    /** An export of an existing file, at the file's size. */
    public static ExportSpec ofFile(String name, Path path) {
        return new ExportSpec(name, path, 0, false, null);
    }

    /** An export of a file that does not exist yet; the server creates it sparse with {@code sizeBytes}. */
    public static ExportSpec sparse(String name, Path path, long sizeBytes) {
        if (sizeBytes == 0) {
            throw new IllegalArgumentException("a sparse export needs a size > 0");
        }
        return new ExportSpec(name, path, sizeBytes, false, null);
    }

    public ExportSpec asReadOnly() {
        return new ExportSpec(name, path, sizeBytes, true, description);
    }

    public ExportSpec withDescription(String text) {
        return new ExportSpec(name, path, sizeBytes, readOnly, text);
    }

    /** The value of {@code --export}. */
    public String cliValue() {
        StringBuilder value = new StringBuilder(name).append('=').append(path);
        if (sizeBytes > 0) {
            value.append(",size=").append(Sizes.format(sizeBytes));
        }
        if (readOnly) {
            value.append(",readonly");
        }
        if (description != null) {
            value.append(",description=").append(description);
        }
        return value.toString();
    }
}
