package io.replstor.replicator.meta;

import java.security.SecureRandom;
import java.util.function.LongSupplier;

/**
 * New current UUIDs: 64 random bits from {@link SecureRandom}, with the {@link GenerationUuids#UUID_PRIMARY}
 * bit cleared and never 0 or {@link GenerationUuids#UUID_JUST_CREATED}. The source is a seam for tests.
 */
public final class UuidGenerator {
    private final LongSupplier source;

    public UuidGenerator(LongSupplier source) {
        this.source = source;
    }

    public static UuidGenerator secure() {
        SecureRandom random = new SecureRandom();
        return new UuidGenerator(random::nextLong);
    }

    public long next() {
        while (true) {
            long v = source.getAsLong() & ~GenerationUuids.UUID_PRIMARY;
            if (GenerationUuids.meaningful(v)) {
                return v;
            }
        }
    }
}
