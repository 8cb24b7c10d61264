package io.replstor.replicator.meta;

import io.replstor.replicator.DiskState;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Set;
import java.util.function.UnaryOperator;

import static io.replstor.replicator.meta.MetaBlock.BLOCK_SIZE;

/**
 * The on-disk metadata of one replicated volume on one node: superblock (geometry, disk state,
 * flags, generation UUIDs, peer slots), one out-of-sync bitmap per peer slot, and the activity log.
 * Layout: {@link MetadataGeometry}; blocks: {@link MetaBlock}, {@link Superblock}, {@link DirtyBitmap},
 * {@link ActivityLog}.
 *
 * <h2>Life cycle</h2>
 * <ul>
 * <li>{@link #create} (create-md) refuses to overwrite valid metadata unless forced. It first zeroes
 * both superblock copies, then zeroes the activity-log ring and writes every bitmap block, syncs, and
 * writes the superblock last (both copies), so a crash in between leaves no metadata rather than a
 * mix. The result: disk Inconsistent, current UUID "just created", AL clean. It returns the
 * metadata opened.
 * <li>{@link #open} reads and checks everything: the newest valid superblock copy, every bitmap
 * block, the activity-log ring. Damage it cannot attribute to a crash fails the open with a
 * {@link MetadataException} naming the block; tolerated damage is in {@link #openReport()}. Opened
 * for writing, it first commits the superblock with {@link VolumeFlag#AL_CLEAN} cleared (and
 * {@link VolumeFlag#CRASHED_PRIMARY} set if the node stopped uncleanly while Primary), before any
 * other metadata write can happen.
 * <li>{@link #commit} persists a new {@link PersistentState}: one superblock copy, synced, before it
 * returns. Callers expose state that depends on it (a handler run, I/O resumed) only afterwards.
 * <li>{@link #flush} persists the changed bitmap blocks. The activity log persists itself.
 * <li>{@link #close} flushes the bitmaps and, when no write is in flight, commits AL_CLEAN to both
 * superblock copies.
 * </ul>
 *
 * <p>Ownership: create and open take the {@link MetaDisk}; close (or a failed open) closes it.
 */
public final class Metadata implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Metadata.class);

    private final MetaDisk disk;
    private final MetaIo io;
    private final MetadataGeometry geometry;
    private final DirtyBitmap bitmap;
    private final ActivityLog activityLog;
    private final OpenReport openReport;
    private final boolean readOnly;
    private final MetadataCounters counters;
    private final UuidGenerator uuidGenerator;
    private final Object commitLock = new Object();
    private volatile PersistentState state;
    private volatile long superblockTransaction;
    private volatile boolean closed;

    private Metadata(MetaDisk disk, MetaIo io, Superblock.Contents sb, DirtyBitmap bitmap, ActivityLog activityLog,
                     OpenReport openReport, UuidGenerator uuidGenerator) {
        this.disk = disk;
        this.io = io;
        this.geometry = sb.geometry();
        this.state = sb.state();
        this.superblockTransaction = sb.transaction();
        this.bitmap = bitmap;
        this.activityLog = activityLog;
        this.openReport = openReport;
        this.readOnly = disk.readOnly();
        this.counters = io.counters();
        this.uuidGenerator = uuidGenerator;
    }

    /** create-md with DRBD's UUID source ({@link UuidGenerator#secure()}). */
    public static Metadata create(MetaDisk disk, CreateOptions options) throws IOException {
        return create(disk, options, UuidGenerator.secure());
    }

    public static Metadata create(MetaDisk disk, CreateOptions options, UuidGenerator uuids) throws IOException {
        try {
            format(disk, options);
        } catch (IOException | RuntimeException e) {
            disk.close();
            throw e;
        }
        return open(disk, uuids);
    }

    private static void format(MetaDisk disk, CreateOptions o) throws IOException {
        if (disk.readOnly()) {
            throw new MetadataException(MetadataException.Kind.INVALID,
                    "cannot create metadata on a read-only device: " + disk.describe());
        }
        MetadataGeometry g = disk.external()
                ? MetadataGeometry.forExternal(o, disk.data().sizeBytes(), disk.meta().sizeBytes())
                : MetadataGeometry.forInternal(o, disk.data().sizeBytes());
        MetaIo io = new MetaIo(disk, new MetadataCounters());
        Superblock.Contents existing = probe(disk, io);
        if (existing != null && !o.force()) {
            throw new MetadataException(MetadataException.Kind.ALREADY_EXISTS, disk.describe()
                    + " already holds valid metadata of resource '" + existing.geometry().resourceName() + "' (node "
                    + existing.geometry().nodeId() + ", disk " + existing.state().diskState().drbdName()
                    + ", superblock transaction " + existing.transaction() + "); use --force to overwrite it");
        }
        if (existing != null) {
            LOG.warn("{}: overwriting the metadata of resource '{}' (forced)", disk.describe(),
                    existing.geometry().resourceName());
        }
        byte[] zeroes = new byte[2 * BLOCK_SIZE];
        io.write(g.blockOffset(g.superblockNumber(0)), zeroes, 0, zeroes.length);
        io.sync("create-md: invalidate superblocks");
        ActivityLog.format(g, io);
        DirtyBitmap.format(g, io);
        io.sync("create-md: ring and bitmaps");
        PersistentState s = initialState(g, o);
        for (long txn = 1; txn <= 2; txn++) {
            writeSuperblock(io, g, s, txn);
        }
        LOG.info("{}: created metadata of resource '{}', node {}: {} bytes of data, {} bytes of metadata at offset {}, "
                        + "max-peers {}, al-extents {}", disk.describe(), g.resourceName(), g.nodeId(),
                g.dataSizeBytes(), g.mdSizeBytes(), g.mdOffsetBytes(), g.maxPeers(), g.alExtents());
    }

    private static PersistentState initialState(MetadataGeometry g, CreateOptions o) {
        List<PeerSlot> peers = new ArrayList<>();
        for (int s = 0; s < g.maxPeers(); s++) {
            peers.add(s < o.peerNodeIds().size() ? PeerSlot.of(o.peerNodeIds().get(s)) : PeerSlot.unassigned());
        }
        return new PersistentState(DiskState.INCONSISTENT, Set.of(VolumeFlag.AL_CLEAN),
                GenerationUuids.justCreated(g.maxPeers()), peers, g.dataSizeBytes(), 0);
    }

    /** @return a valid superblock copy at the end of the metadata device, or null */
    private static Superblock.Contents probe(MetaDisk disk, MetaIo io) throws IOException {
        long size = disk.meta().sizeBytes();
        if (MetadataGeometry.floorBlock(size) < 2 * BLOCK_SIZE) {
            return null;
        }
        ByteBuffer buf = io.read(MetadataGeometry.superblockOffset(size, 0), 2);
        Superblock.Contents newest = null;
        for (int copy = 0; copy < 2; copy++) {
            if (MetaBlock.check(buf, copy * BLOCK_SIZE, MetaBlock.TYPE_SUPERBLOCK).valid()) {
                try {
                    Superblock.Contents c = Superblock.decode(buf, copy * BLOCK_SIZE);
                    if (newest == null || c.transaction() > newest.transaction()) {
                        newest = c;
                    }
                } catch (IllegalArgumentException e) {
                    // not usable metadata: nothing create-md must protect
                }
            }
        }
        return newest;
    }

    /** Opens existing metadata; read-only if the disk is. */
    public static Metadata open(MetaDisk disk) throws IOException {
        return open(disk, UuidGenerator.secure());
    }

    public static Metadata open(MetaDisk disk, UuidGenerator uuids) throws IOException {
        try {
            return load(disk, uuids);
        } catch (IOException | RuntimeException e) {
            disk.close();
            throw e;
        }
    }

    private static Metadata load(MetaDisk disk, UuidGenerator uuids) throws IOException {
        MetaIo io = new MetaIo(disk, new MetadataCounters());
        List<String> warnings = new ArrayList<>();
        long deviceSize = disk.meta().sizeBytes();
        if (MetadataGeometry.floorBlock(deviceSize) < 2 * BLOCK_SIZE) {
            throw new MetadataException(MetadataException.Kind.NO_METADATA, disk.describe() + ": the device has only "
                    + deviceSize + " bytes, too small to hold metadata; create it with create-md");
        }
        ByteBuffer buf = io.read(MetadataGeometry.superblockOffset(deviceSize, 0), 2);
        BlockCheck[] checks = new BlockCheck[2];
        Superblock.Contents[] copies = new Superblock.Contents[2];
        for (int copy = 0; copy < 2; copy++) {
            checks[copy] = MetaBlock.check(buf, copy * BLOCK_SIZE, MetaBlock.TYPE_SUPERBLOCK);
            if (checks[copy].valid()) {
                try {
                    copies[copy] = Superblock.decode(buf, copy * BLOCK_SIZE);
                    if ((copies[copy].transaction() & 1) != copy) {
                        throw new IllegalArgumentException("transaction " + copies[copy].transaction()
                                + " belongs in copy " + MetadataGeometry.copyName((int) (copies[copy].transaction() & 1)));
                    }
                } catch (IllegalArgumentException e) {
                    copies[copy] = null;
                    checks[copy] = BlockCheck.of(BlockCheck.Reason.BAD_CONTENT, checks[copy].transaction(),
                            e.getMessage());
                }
            }
        }
        int use = chooseCopy(disk, deviceSize, checks, copies);
        Superblock.Contents sb = copies[use];
        MetadataGeometry g = sb.geometry();
        int other = 1 - use;
        if (!checks[other].valid()) {
            long n = g.superblockNumber(other);
            String w = "superblock copy " + MetadataGeometry.copyName(other) + " (block "
                    + g.blockOffset(n) / BLOCK_SIZE + " at offset " + g.blockOffset(n) + ") is unusable: "
                    + checks[other].detail() + "; using copy " + MetadataGeometry.copyName(use) + " (transaction "
                    + sb.transaction() + ")";
            LOG.warn("{}: {}", disk.describe(), w);
            warnings.add(w);
        }
        checkDevices(disk, g);
        boolean clean = sb.state().has(VolumeFlag.AL_CLEAN);
        DirtyBitmap bitmap = DirtyBitmap.load(g, io, !clean, warnings);
        ActivityLog al = ActivityLog.load(g, io, clean,
                (extent, offset, length) -> bitmap.flushRange(offset, length), disk.readOnly(), warnings);
        OpenReport report = new OpenReport(MetadataGeometry.copyName(use), sb.transaction(), checks[other], clean,
                warnings);
        Metadata md = new Metadata(disk, io, sb, bitmap, al, report, uuids);
        if (!md.readOnly) {
            md.markOpen(clean);
        }
        LOG.info("{}: opened metadata of resource '{}' {}: superblock transaction {} (copy {}), disk {}, "
                        + "previous shutdown {}, {} extents to resync from the activity log",
                disk.describe(), g.resourceName(), md.readOnly ? "read-only" : "read-write", sb.transaction(),
                report.superblockCopy(), sb.state().diskState().drbdName(), clean ? "clean" : "unclean",
                al.recover().size());
        return md;
    }

    private static int chooseCopy(MetaDisk disk, long deviceSize, BlockCheck[] checks, Superblock.Contents[] copies)
            throws MetadataException {
        if (copies[0] != null && copies[1] != null) {
            return copies[0].transaction() > copies[1].transaction() ? 0 : 1;
        }
        if (copies[0] != null || copies[1] != null) {
            return copies[0] != null ? 0 : 1;
        }
        String both = "superblock copy A (block " + MetadataGeometry.superblockOffset(deviceSize, 0) / BLOCK_SIZE
                + " at offset " + MetadataGeometry.superblockOffset(deviceSize, 0) + "): " + checks[0].detail()
                + "; copy B (block " + MetadataGeometry.superblockOffset(deviceSize, 1) / BLOCK_SIZE + " at offset "
                + MetadataGeometry.superblockOffset(deviceSize, 1) + "): " + checks[1].detail();
        boolean foreign = true;
        int worst = 1;
        for (int copy = 0; copy < 2; copy++) {
            BlockCheck.Reason r = checks[copy].reason();
            if (r != BlockCheck.Reason.ALL_ZERO && r != BlockCheck.Reason.BAD_MAGIC) {
                foreign = false;
                worst = copy;
            }
        }
        if (foreign) {
            throw new MetadataException(MetadataException.Kind.NO_METADATA, "no replstor metadata on " + disk.describe()
                    + " (" + both + "); create it with create-md (if the device was resized, its metadata is no longer at "
                    + "the end)");
        }
        long offset = MetadataGeometry.superblockOffset(deviceSize, worst);
        boolean newer = checks[0].reason() == BlockCheck.Reason.UNSUPPORTED_VERSION
                || checks[1].reason() == BlockCheck.Reason.UNSUPPORTED_VERSION;
        throw new MetadataException(newer ? MetadataException.Kind.UNSUPPORTED_VERSION : MetadataException.Kind.CORRUPT,
                disk.describe() + ": both superblock copies are unusable: " + both
                        + ". The metadata was not used; restore it, or recreate it (create-md --force) and do a full sync",
                offset / BLOCK_SIZE, offset);
    }

    private static void checkDevices(MetaDisk disk, MetadataGeometry g) throws MetadataException {
        long mdDevice = MetadataGeometry.floorBlock(disk.meta().sizeBytes());
        if (g.external() != disk.external()) {
            throw new MetadataException(MetadataException.Kind.INVALID, disk.describe() + ": the metadata of resource '"
                    + g.resourceName() + "' was created " + (g.external() ? "external" : "internal")
                    + "; open it the same way");
        }
        if (mdDevice != g.mdDeviceSizeBytes()) {
            throw new MetadataException(MetadataException.Kind.INVALID, disk.describe() + ": the device is now "
                    + mdDevice + " bytes but was " + g.mdDeviceSizeBytes() + " when the metadata was created; "
                    + "resizing is not supported yet");
        }
        if (g.external() && MetadataGeometry.floorBlock(disk.data().sizeBytes()) < g.dataSizeBytes()) {
            throw new MetadataException(MetadataException.Kind.INVALID, disk.describe() + ": the backing device has "
                    + disk.data().sizeBytes() + " bytes, less than the " + g.dataSizeBytes() + " the metadata describes");
        }
    }

    /** The first write of a session: from now on a crash is an unclean shutdown. */
    private void markOpen(boolean clean) throws IOException {
        commit(s -> {
            PersistentState next = s.with(VolumeFlag.AL_CLEAN, false);
            if (!clean && s.has(VolumeFlag.PRIMARY) && !s.has(VolumeFlag.CRASHED_PRIMARY)) {
                LOG.warn("{}: resource '{}' stopped uncleanly while Primary: marking it crashed-primary",
                        disk.describe(), geometry.resourceName());
                next = next.with(VolumeFlag.CRASHED_PRIMARY, true);
            }
            return next;
        });
        if (bitmap.unflushedBlocks() > 0) {
            bitmap.flush();
        }
    }

    static MetadataException corrupt(MetaDisk disk, MetadataGeometry g, long areaBlock, BlockCheck check) {
        long offset = g.blockOffset(areaBlock);
        MetadataException.Kind kind = check.reason() == BlockCheck.Reason.UNSUPPORTED_VERSION
                ? MetadataException.Kind.UNSUPPORTED_VERSION : MetadataException.Kind.CORRUPT;
        return new MetadataException(kind, disk.describe() + ", resource '" + g.resourceName() + "': block "
                + offset / BLOCK_SIZE + " (" + g.describeBlock(areaBlock) + ") at offset " + offset + " is "
                + (check.status() == BlockCheck.Status.CORRUPT ? "corrupt" : "not what the log needs") + ": "
                + check.detail() + ". The metadata was not used; restore it, or recreate it (create-md --force) "
                + "and do a full sync", offset / BLOCK_SIZE, offset);
    }

    public MetadataGeometry geometry() {
        return geometry;
    }

    /** The last committed state. */
    public PersistentState state() {
        return state;
    }

    public long superblockTransaction() {
        return superblockTransaction;
    }

    public OpenReport openReport() {
        return openReport;
    }

    public DirtyBitmap bitmap() {
        return bitmap;
    }

    public ActivityLog activityLog() {
        return activityLog;
    }

    public MetadataCounters counters() {
        return counters;
    }

    public boolean readOnly() {
        return readOnly;
    }

    /** The devices (tests simulate a crash by closing them without {@link #close()}). */
    MetaDisk disk() {
        return disk;
    }

    /** "internal metadata on /path" etc. */
    public String describe() {
        return disk.describe();
    }

    /**
     * Persists {@code change(state())} (one superblock copy, synced) and makes it the state.
     * Commits are serialized; the geometry never changes.
     */
    public PersistentState commit(UnaryOperator<PersistentState> change) throws IOException {
        synchronized (commitLock) {
            checkWritable();
            PersistentState next = change.apply(state);
            if (next.peers().size() != geometry.maxPeers()) {
                throw new IllegalArgumentException(next.peers().size() + " peer slots; the metadata has "
                        + geometry.maxPeers());
            }
            long txn = superblockTransaction + 1;
            writeSuperblock(io, geometry, next, txn);
            superblockTransaction = txn;
            state = next;
            counters.superblockCommits.increment();
            LOG.debug("{}: superblock transaction {}: disk {}, flags {}, uuids {}", disk.describe(), txn,
                    next.diskState().drbdName(), next.flags(), next.uuids());
            return next;
        }
    }

    private static void writeSuperblock(MetaIo io, MetadataGeometry g, PersistentState s, long txn) throws IOException {
        byte[] block = Superblock.encode(g, s, txn);
        io.write(g.blockOffset(g.superblockNumber((int) (txn & 1))), block, 0, BLOCK_SIZE);
        io.sync("superblock");
    }

    /** The slot of peer {@code nodeId}, giving it the first free slot if it has none. */
    public int assignPeerSlot(int nodeId) throws IOException {
        if (nodeId == geometry.nodeId()) {
            throw new IllegalArgumentException("node " + nodeId + " is this node, not a peer");
        }
        synchronized (commitLock) {
            int slot = state.slotOf(nodeId);
            if (slot >= 0) {
                return slot;
            }
            int free = state.slotOf(PeerSlot.UNASSIGNED);
            if (free < 0) {
                throw new MetadataException(MetadataException.Kind.INVALID, "resource '" + geometry.resourceName()
                        + "': no free peer slot for node " + nodeId + " (max-peers " + geometry.maxPeers()
                        + " are all assigned); recreate the metadata with a larger max-peers");
            }
            commit(s -> s.withPeer(free, PeerSlot.of(nodeId)));
            LOG.info("{}: resource '{}': peer node {} gets slot {}", disk.describe(), geometry.resourceName(), nodeId,
                    free);
            return free;
        }
    }

    /**
     * A new current UUID (DRBD: first write after losing a peer, promotion without all peers,
     * primary --force): assigned peers not in {@code connectedPeers} start recording at the old one.
     */
    public GenerationUuids newCurrentUuid(Set<Integer> connectedPeers, boolean primary) throws IOException {
        long fresh = uuidGenerator.next();
        PersistentState s = commit(st -> st.withUuids(st.uuids().withNewCurrent(fresh, primary,
                disconnectedSlots(st, connectedPeers))));
        LOG.info("{}: resource '{}': new current UUID {}", disk.describe(), geometry.resourceName(),
                GenerationUuids.format(s.uuids().current()));
        return s.uuids();
    }

    /**
     * new-current-uuid --clear-bitmap: a new current UUID, and the given peers' slots stop recording
     * and their bitmaps are cleared (the UUIDs are committed first: leftover bits only cost resync).
     */
    public GenerationUuids newCurrentUuidClearingBitmaps(Set<Integer> peers, boolean primary) throws IOException {
        long fresh = uuidGenerator.next();
        BitSet slots = new BitSet();
        PersistentState s;
        synchronized (commitLock) {
            for (int peer : peers) {
                int slot = state.slotOf(peer);
                if (slot < 0) {
                    throw new IllegalArgumentException("node " + peer + " has no peer slot");
                }
                slots.set(slot);
            }
            s = commit(st -> st.withUuids(st.uuids().withNewCurrentClearingBitmaps(fresh, primary, slots)));
            for (int slot = slots.nextSetBit(0); slot >= 0; slot = slots.nextSetBit(slot + 1)) {
                bitmap.clearAll(slot);
            }
        }
        bitmap.flush();
        LOG.info("{}: resource '{}': new current UUID {}, bitmaps of peers {} cleared", disk.describe(),
                geometry.resourceName(), GenerationUuids.format(s.uuids().current()), peers);
        return s.uuids();
    }

    private static BitSet disconnectedSlots(PersistentState s, Set<Integer> connectedPeers) {
        BitSet slots = new BitSet();
        for (int slot = 0; slot < s.peers().size(); slot++) {
            PeerSlot p = s.peers().get(slot);
            if (p.assigned() && !connectedPeers.contains(p.nodeId())) {
                slots.set(slot);
            }
        }
        return slots;
    }

    /** Persists the changed bitmap blocks. */
    public void flush() throws IOException {
        checkWritable();
        bitmap.flush();
    }

    @Override
    public void close() throws IOException {
        if (closed) {
            return;
        }
        closed = true;
        try {
            if (!readOnly) {
                bitmap.flush();
                int inFlight = activityLog.writesInFlight();
                if (inFlight == 0) {
                    PersistentState clean = state.with(VolumeFlag.AL_CLEAN, true);
                    synchronized (commitLock) {
                        // both copies: a later bit flip in one still leaves the final state
                        for (int i = 0; i < 2; i++) {
                            writeSuperblock(io, geometry, clean, superblockTransaction + 1);
                            superblockTransaction++;
                        }
                        state = clean;
                    }
                    LOG.info("{}: closed metadata of resource '{}' cleanly", disk.describe(), geometry.resourceName());
                } else {
                    LOG.warn("{}: closing metadata of resource '{}' with {} writes in flight: not marked clean, the "
                            + "activity log will be replayed", disk.describe(), geometry.resourceName(), inFlight);
                }
            }
        } finally {
            disk.close();
        }
    }

    private void checkWritable() {
        if (closed) {
            throw new IllegalStateException("the metadata of resource '" + geometry.resourceName() + "' is closed");
        }
        if (readOnly) {
            throw new IllegalStateException("the metadata of resource '" + geometry.resourceName()
                    + "' is open read-only");
        }
    }
}
