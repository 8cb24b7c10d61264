package io.replstor.replicator.meta;

/**
 * What reading one 4 KiB metadata block found. Three outcomes: {@link Status#VALID}, torn or never
 * written ({@link Status#TORN_OR_UNWRITTEN}), and {@link Status#CORRUPT}; the {@link Reason} says
 * which check decided it, because the policy that follows depends on it (after an unclean shutdown a
 * CRC mismatch of a block we were overwriting can be a torn write, a wrong magic cannot).
 *
 * @param transaction the block's transaction number when the header could be read, else -1
 * @param detail what was found, for messages ("CRC32C mismatch: stored 0x..., computed 0x...")
 */
public record BlockCheck(Reason reason, long transaction, String detail) {

    public enum Status { VALID, TORN_OR_UNWRITTEN, CORRUPT }

    public enum Reason {
        OK(Status.VALID),
        /** Every byte is zero: never written. */
        ALL_ZERO(Status.TORN_OR_UNWRITTEN),
        /** Well-formed, but an older transaction than the reader expected at this place. */
        STALE(Status.TORN_OR_UNWRITTEN),
        BAD_MAGIC(Status.CORRUPT),
        BAD_CRC(Status.CORRUPT),
        BAD_TYPE(Status.CORRUPT),
        UNSUPPORTED_VERSION(Status.CORRUPT),
        /** Checksum fine, but a field contradicts the superblock or its place in the area. */
        BAD_CONTENT(Status.CORRUPT);

        private final Status status;

        Reason(Status status) {
            this.status = status;
        }

        public Status status() {
            return status;
        }
    }

    public Status status() {
        return reason.status();
    }

    public boolean valid() {
        return reason == Reason.OK;
    }

    static BlockCheck ok(long transaction) {
        return new BlockCheck(Reason.OK, transaction, "valid, transaction " + transaction);
    }

    static BlockCheck of(Reason reason, long transaction, String detail) {
        return new BlockCheck(reason, transaction, detail);
    }

    @Override
    public String toString() {
        return status() + " (" + detail + ")";
    }
}
