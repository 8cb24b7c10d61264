package io.replstor.replicator.meta;

import java.util.List;

/**
 * What {@link Metadata#open} found besides the metadata itself.
 *
 * @param superblockCopy "A" or "B", the copy in use
 * @param superblockTransaction its transaction number
 * @param otherCopy what the other copy held (an older valid commit, normally)
 * @param previousShutdownClean whether the metadata had been closed cleanly ({@link VolumeFlag#AL_CLEAN})
 * @param warnings damage that was tolerated: a torn superblock copy, a torn activity-log tail, torn
 *                 bitmap blocks replaced by all-dirty ranges
 */
public record OpenReport(String superblockCopy, long superblockTransaction, BlockCheck otherCopy,
                         boolean previousShutdownClean, List<String> warnings) {
    public OpenReport {
        warnings = List.copyOf(warnings);
    }
}
