package io.replstor.replicator.engine;

import io.netty.buffer.ByteBuf;
import io.replstor.common.io.BlockDevice;
import io.replstor.common.io.StorageException;
import io.replstor.replicator.DiskState;
import io.replstor.replicator.Role;
import io.replstor.replicator.config.DiskConfig;
import io.replstor.replicator.config.NodeConfig;
import io.replstor.replicator.config.ResourceConfig;
import io.replstor.replicator.meta.GenerationUuids;
import io.replstor.replicator.meta.MetaDisk;
import io.replstor.replicator.meta.Metadata;
import io.replstor.replicator.meta.PersistentState;
import io.replstor.replicator.meta.VolumeFlag;
import io.replstor.replicator.net.DisconnectReason;
import io.replstor.replicator.net.PeerFrame;
import io.replstor.replicator.sync.GenerationIds;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * One replicated resource on this node: its disk and metadata, its role and disk state, and a
 * {@link PeerLink} per peer. State changes (attach, handshakes, promotion, verbs) run one at a time
 * on the resource's worker thread; the I/O path ({@link #write}, {@link #flush}) runs on the callers'
 * threads.
 */
public final class Resource {
    private static final Logger LOG = LoggerFactory.getLogger(Resource.class);
    /** Longest an application write waits for its peers; ko-count and timeouts end it much sooner. */
    private static final long WRITE_WAIT_MAX_NANOS = TimeUnit.MINUTES.toNanos(10);

    final ReplicationNode node;
    final ResourceConfig cfg;
    final NodeConfig self;
    final DiskConfig diskConfig;
    final List<PeerLink> links = new ArrayList<>();
    private final ExecutorService worker;
    final ReentrantReadWriteLock joinLock = new ReentrantReadWriteLock();
    final RangeLocks ranges = new RangeLocks();
    private final AtomicLong sequence = new AtomicLong();
    final AtomicLong epoch = new AtomicLong(1);
    private final AtomicInteger inFlight = new AtomicInteger();
    private final ReplicatedVolume volume;

    volatile boolean up;
    volatile String error;
    /** The kernel NBD device this resource is attached to on this node (replctl attach), or null. */
    private volatile String device;
    volatile Role role = Role.SECONDARY;
    volatile DiskState disk = DiskState.DISKLESS;
    volatile Metadata md;
    volatile BlockDevice data;
    private volatile long limitBits;

    // NBD clients (auto-promote)
    private int clients;
    private boolean autoPromoted;

    Resource(ReplicationNode node, ResourceConfig cfg, NodeConfig self, DiskConfig diskConfig,
             List<NodeConfig> peers) {
        this.node = node;
        this.cfg = cfg;
        this.self = self;
        this.diskConfig = diskConfig;
        for (NodeConfig p : peers) {
            links.add(new PeerLink(this, p));
        }
        this.worker = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "resource-" + cfg.name());
            t.setDaemon(true);
            return t;
        });
        this.volume = new ReplicatedVolume(this);
    }

    public String name() {
        return cfg.name();
    }

    public long sizeBytes() {
        return cfg.sizeBytes();
    }

    /** The block device to export: I/O is allowed only while this node is an UpToDate Primary. */
    public BlockDevice volume() {
        return volume;
    }

    /** Records the kernel NBD device serving this resource locally (null: none). */
    public void setDevice(String dev) {
        this.device = dev;
    }

    public String device() {
        return device;
    }

    public Role role() {
        return role;
    }

    public DiskState disk() {
        return disk;
    }

    public boolean isUp() {
        return up;
    }

    ExecutorService worker() {
        return worker;
    }

    long granularity() {
        return md == null ? 4096 : md.bitmap().granularityBytes();
    }

    PeerLink link(String peerName) throws EngineException {
        if (peerName == null) {
            return null;
        }
        for (PeerLink l : links) {
            if (l.peer.name().equals(peerName)) {
                return l;
            }
        }
        throw new EngineException(EngineException.Code.NOT_FOUND, "resource " + name() + " on " + self.name()
                + " has no peer '" + peerName + "'");
    }

    PeerLink linkById(int nodeId) {
        for (PeerLink l : links) {
            if (l.peer.id() == nodeId) {
                return l;
            }
        }
        return null;
    }

    private List<PeerLink> select(String peerName) throws EngineException {
        PeerLink one = link(peerName);
        return one == null ? links : List.of(one);
    }

    /** Runs {@code task} on the worker and waits for it (admin verbs). */
    <T> T onWorker(Callable<T> task) throws EngineException {
        Future<T> f = worker.submit(task);
        try {
            return f.get(120, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new EngineException(EngineException.Code.IO, "interrupted");
        } catch (TimeoutException e) {
            throw new EngineException(EngineException.Code.IO, "resource " + name() + " on " + self.name()
                    + ": the request did not finish within 120 s");
        } catch (ExecutionException e) {
            if (e.getCause() instanceof EngineException ee) {
                throw ee;
            }
            throw new EngineException(EngineException.Code.IO, "resource " + name() + " on " + self.name() + ": "
                    + e.getCause().getMessage(), e.getCause());
        }
    }

    private EngineException state(String msg) {
        return new EngineException(EngineException.Code.STATE, name() + " on " + self.name() + ": " + msg);
    }

    // ---- up / down

    /** DRBD's {@code up}: attach the disk (open the metadata), then connect to the peers. */
    public String up() throws EngineException {
        return onWorker(() -> {
            if (up) {
                return name() + " on " + self.name() + " is already up";
            }
            attach();
            for (PeerLink l : links) {
                l.start();
            }
            emitResource("change");
            return name() + " on " + self.name() + " is up: disk " + disk.drbdName();
        });
    }

    private void attach() throws EngineException {
        disk = DiskState.ATTACHING;
        MetaDisk mdisk = null;
        Metadata m = null;
        try {
            mdisk = diskConfig.internalMetadata() ? MetaDisk.openInternal(name(), diskConfig.disk(), false)
                    : MetaDisk.openExternal(name(), diskConfig.disk(), diskConfig.metaDisk().get(), false, 0);
            m = Metadata.open(mdisk);
            var g = m.geometry();
            if (!g.resourceName().equals(name())) {
                throw new IOException("the metadata on " + mdisk.describe() + " belongs to resource '" + g.resourceName()
                        + "', not '" + name() + "'");
            }
            if (g.nodeId() != self.id()) {
                throw new IOException("the metadata on " + mdisk.describe() + " was created for node id " + g.nodeId()
                        + ", but " + self.name() + " has id " + self.id());
            }
            if (g.dataSizeBytes() < cfg.sizeBytes()) {
                throw new IOException(mdisk.describe() + " holds " + g.dataSizeBytes() + " bytes of data, less than the "
                        + cfg.sizeBytes() + " bytes resource " + name() + " is configured with");
            }
            for (PeerLink l : links) {
                m.assignPeerSlot(l.peer.id());
            }
            limitBits = (cfg.sizeBytes() + m.bitmap().granularityBytes() - 1) / m.bitmap().granularityBytes();
            if (!m.openReport().previousShutdownClean()) {
                var hot = m.activityLog().recover();
                long bytes = 0;
                for (long e : hot) {
                    long off = m.activityLog().extentOffset(e);
                    long len = Math.min(m.activityLog().extentLength(e), cfg.sizeBytes() - off);
                    if (len <= 0) {
                        continue;
                    }
                    for (PeerLink l : links) {
                        m.bitmap().set(m.state().slotOf(l.peer.id()), off, len);
                    }
                    bytes += len;
                }
                LOG.warn("resource {} on {}: unclean shutdown: {} hot activity-log extents ({} bytes) marked out of "
                        + "sync for every peer", name(), self.name(), hot.size(), bytes);
            }
            PersistentState s = m.state();
            if (links.isEmpty() && s.diskState() != DiskState.UP_TO_DATE) {
                // a resource without peers: its disk is the only copy, so it is current by definition
                m.newCurrentUuid(java.util.Set.of(), false);
                s = m.commit(st -> st.withDiskState(DiskState.UP_TO_DATE));
                LOG.info("resource {} on {}: no peers configured: the local disk is the only copy, UpToDate", name(),
                        self.name());
            }
            if (s.has(VolumeFlag.PRIMARY)) {
                s = m.commit(st -> st.with(VolumeFlag.PRIMARY, false)
                        .withUuids(st.uuids().withPrimaryFlag(false)));
            }
            m.flush();
            DiskState persisted = s.diskState();
            md = m;
            data = mdisk.data();
            // a restarted node is Consistent until a handshake proves it current; with no peers to
            // prove it against, nothing can be newer than its own data
            disk = persisted == DiskState.UP_TO_DATE && !links.isEmpty() ? DiskState.CONSISTENT : persisted;
            role = Role.SECONDARY;
            up = true;
            error = null;
            LOG.info("resource {} on {}: attached {} (disk {}, current UUID {})", name(), self.name(), mdisk.describe(),
                    disk.drbdName(), GenerationUuids.format(s.uuids().current()));
        } catch (IOException | RuntimeException e) {
            disk = DiskState.DISKLESS;
            error = "cannot attach " + diskConfig.disk() + ": " + e.getMessage();
            LOG.error("resource {} on {}: {}", name(), self.name(), error);
            if (m != null) {
                try {
                    m.close();
                } catch (IOException ignored) {
                    // already failing
                }
            } else if (mdisk != null) {
                mdisk.close();
            }
            emitResource("change");
            throw new EngineException(EngineException.Code.IO, name() + " on " + self.name() + ": " + error, e);
        }
    }

    /** DRBD's {@code down}: disconnect, detach, close the metadata cleanly. Refused while clients use it. */
    public String down(boolean shutdown) throws EngineException {
        return onWorker(() -> {
            if (!up) {
                return name() + " on " + self.name() + " is already down";
            }
            synchronized (this) {
                if (clients > 0 && !shutdown) {
                    throw new EngineException(EngineException.Code.IN_USE, name() + " on " + self.name() + " has "
                            + clients + " NBD client(s); disconnect them first");
                }
            }
            if (role == Role.PRIMARY) {
                demoteNow();
            }
            for (PeerLink l : links) {
                l.stop(DisconnectReason.SHUTDOWN, self.name() + " is taking " + name() + " down", true);
            }
            detach();
            emitResource("change");
            return name() + " on " + self.name() + " is down";
        });
    }

    private void detach() {
        up = false;
        Metadata m = md;
        try {
            if (data != null) {
                data.flush();
            }
            if (m != null) {
                m.close();
            }
        } catch (IOException | RuntimeException e) {
            LOG.error("resource {} on {}: closing the metadata: {}", name(), self.name(), e.getMessage());
        }
        md = null;
        data = null;
        disk = DiskState.DISKLESS;
        role = Role.SECONDARY;
    }

    // ---- roles

    public String primary(boolean force) throws EngineException {
        return onWorker(() -> {
            synchronized (this) {
                autoPromoted = false;
            }
            return promote(force);
        });
    }

    private String promote(boolean force) throws EngineException, IOException {
        if (!up) {
            throw state("the resource is down (replctl up " + name() + ")");
        }
        if (role == Role.PRIMARY) {
            return name() + " on " + self.name() + " is already Primary";
        }
        for (PeerLink l : links) {
            if (l.peerRole == Role.PRIMARY && l.conn == ConnState.CONNECTED) {
                throw state("peer " + l.peer.name() + " is Primary; demote it first (dual-primary is not enabled)");
            }
        }
        for (PeerLink l : links) {
            if (l.repl == ReplState.SYNC_TARGET || l.repl == ReplState.PAUSED_SYNC_T
                    || l.repl == ReplState.WF_BITMAP_T) {
                if (!force) {
                    throw state("the disk is a resync target of " + l.peer.name() + " (Inconsistent); wait for the "
                            + "resync or use --force");
                }
            }
        }
        DiskState d = disk;
        boolean forced = false;
        if (d != DiskState.UP_TO_DATE) {
            if (!force) {
                throw state("the disk is " + d.drbdName() + ", not UpToDate; promoting would serve "
                        + (d == DiskState.CONSISTENT ? "data not yet proven current (connect to a peer first)"
                        : "stale or incomplete data") + "; use --force to override");
            }
            forced = true;
        }
        Set<Integer> connected = connectedPeerIds();
        boolean allPeers = connected.size() == links.size();
        List<Session> resync = new ArrayList<>();
        if (forced) {
            // this node's data becomes the newest generation: every peer, connected or not, must take it
            md.newCurrentUuid(Set.of(), true);
            for (PeerLink l : links) {
                Session s = l.replicating();
                if (s != null && (d == DiskState.INCONSISTENT || l.peerDisk != DiskState.UP_TO_DATE)) {
                    setAllBits(s.slot);
                    resync.add(s);
                }
            }
            md.flush();
        } else if (!allPeers) {
            md.newCurrentUuid(connected, true);
        }
        md.commit(s -> s.with(VolumeFlag.PRIMARY, true).withUuids(s.uuids().withPrimaryFlag(true))
                .withDiskState(DiskState.UP_TO_DATE));
        disk = DiskState.UP_TO_DATE;
        role = Role.PRIMARY;
        LOG.info("resource {} on {}: Primary{}", name(), self.name(), forced ? " (forced)" : "");
        broadcastState();
        emitResource("change");
        for (Session s : resync) {
            // reconnect: the handshake makes this node the sync source of a full resync
            s.fail(ConnState.UNCONNECTED, "primary --force on " + self.name() + ": reconnecting to resync "
                    + s.link.peer.name() + " from it");
        }
        return name() + " on " + self.name() + " is Primary" + (forced ? " (forced)" : "");
    }

    public String secondary() throws EngineException {
        return onWorker(() -> {
            synchronized (this) {
                if (clients > 0) {
                    throw new EngineException(EngineException.Code.IN_USE, name() + " on " + self.name() + " has "
                            + clients + " NBD client(s); disconnect them first");
                }
                autoPromoted = false;
            }
            if (role != Role.PRIMARY) {
                return name() + " on " + self.name() + " is already Secondary";
            }
            demoteNow();
            return name() + " on " + self.name() + " is Secondary";
        });
    }

    private void demoteNow() throws IOException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        role = Role.SECONDARY; // new I/O is refused from here on
        while (inFlight.get() > 0 && System.nanoTime() < deadline) {
            try {
                Thread.sleep(1);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        if (data != null) {
            data.flush();
        }
        md.commit(s -> s.with(VolumeFlag.PRIMARY, false).withUuids(s.uuids().withPrimaryFlag(false)));
        md.flush();
        LOG.info("resource {} on {}: Secondary", name(), self.name());
        broadcastState();
        emitResource("change");
    }

    // ---- NBD clients (auto-promote)

    String admit(String client) {
        synchronized (this) {
            if (role == Role.PRIMARY && disk == DiskState.UP_TO_DATE) {
                clients++;
                return null;
            }
        }
        if (!cfg.autoPromote()) {
            return whyNot("it is " + role.drbdName() + " and auto-promote is off");
        }
        try {
            String result = onWorker(() -> {
                synchronized (this) {
                    if (role == Role.PRIMARY) {
                        clients++;
                        return null;
                    }
                }
                promote(false);
                synchronized (this) {
                    clients++;
                    autoPromoted = true;
                }
                LOG.info("resource {} on {}: auto-promoted for NBD client {}", name(), self.name(), client);
                return null;
            });
            return result;
        } catch (EngineException e) {
            String m = e.getMessage();
            String prefix = name() + " on " + self.name() + ": ";
            return whyNot(m.startsWith(prefix) ? m.substring(prefix.length()) : m);
        }
    }

    private String whyNot(String why) {
        StringBuilder b = new StringBuilder("resource " + name() + " cannot be used on " + self.name() + ": " + why);
        for (PeerLink l : links) {
            if (l.peerRole == Role.PRIMARY) {
                b.append("; the Primary is ").append(l.peer.name()).append(" (nbd://").append(l.peer.nbd())
                        .append('/').append(name()).append(')');
            }
        }
        return b.toString();
    }

    void release(String client) {
        boolean demote;
        synchronized (this) {
            clients = Math.max(0, clients - 1);
            demote = clients == 0 && autoPromoted;
        }
        if (demote) {
            worker.execute(() -> {
                synchronized (this) {
                    if (clients > 0 || !autoPromoted) {
                        return;
                    }
                    autoPromoted = false;
                }
                try {
                    if (role == Role.PRIMARY && up) {
                        demoteNow();
                        LOG.info("resource {} on {}: auto-demoted after the last NBD client ({}) left", name(),
                                self.name(), client);
                    }
                } catch (IOException e) {
                    LOG.error("resource {} on {}: auto-demote failed: {}", name(), self.name(), e.getMessage());
                }
            });
        }
    }

    synchronized int clients() {
        return clients;
    }

    // ---- the I/O path

    private void beginIo(String what, long offset) throws StorageException {
        inFlight.incrementAndGet();
        if (role != Role.PRIMARY || disk != DiskState.UP_TO_DATE || !up) {
            inFlight.decrementAndGet();
            throw new StorageException(StorageException.Kind.IO, "resource " + name() + " on " + self.name()
                    + " refuses the " + what + " at offset " + offset + ": it is " + role.drbdName() + " with disk "
                    + disk.drbdName() + (up ? "" : " (down)"));
        }
    }

    private void endIo() {
        inFlight.decrementAndGet();
    }

    void read(long offset, int length, ByteBuf dst) throws StorageException {
        beginIo("read", offset);
        try {
            data.read(offset, length, dst);
        } finally {
            endIo();
        }
    }

    /** An application write: activity log, local disk and every connected peer, as the protocol says. */
    void write(long offset, ByteBuf src, boolean fua) throws StorageException {
        beginIo("write", offset);
        try {
            int len = src.readableBytes();
            Metadata m = md;
            beginActivity(m, offset, len);
            try {
                awaitPeers(issueWrite(m, offset, src, fua), "write", offset);
            } finally {
                m.activityLog().endWrite(offset, len);
            }
        } finally {
            endIo();
        }
    }

    /**
     * The same write without a waiting thread: the local write happens in the call, and {@code done}
     * runs when every connected peer has confirmed it (on the thread that received the last ack).
     */
    void writeAsync(long offset, ByteBuf src, boolean fua, io.replstor.common.io.BlockDevice.WriteCompletion done)
            throws StorageException {
        beginIo("write", offset);
        int len = src.readableBytes();
        Metadata m = md;
        WriteOp op;
        try {
            beginActivity(m, offset, len);
            try {
                op = issueWrite(m, offset, src, fua);
            } catch (StorageException | RuntimeException e) {
                m.activityLog().endWrite(offset, len);
                throw e;
            }
        } catch (StorageException | RuntimeException e) {
            endIo();
            throw e;
        }
        op.whenDone(() -> {
            m.activityLog().endWrite(offset, len);
            endIo();
            done.completed(null);
        });
    }

    private void beginActivity(Metadata m, long offset, int len) throws StorageException {
        try {
            m.activityLog().beginWrite(offset, len);
        } catch (IOException e) {
            throw new StorageException(StorageException.Kind.IO, "resource " + name() + ": activity log at offset "
                    + offset + ": " + e.getMessage(), e);
        }
    }

    /** Queues the write to the peers (or marks it for those not connected) and writes it locally. */
    private WriteOp issueWrite(Metadata m, long offset, ByteBuf src, boolean fua) throws StorageException {
        int len = src.readableBytes();
        long seq = sequence.incrementAndGet();
        joinLock.readLock().lock();
        ranges.lock(offset, len);
        try {
            int n = 0;
            for (PeerLink l : links) {
                if (l.replicating() != null) {
                    n++;
                }
            }
            WriteOp op = new WriteOp(n);
            long e = epoch.get();
            for (PeerLink l : links) {
                Session s = l.replicating();
                if (s != null) {
                    s.sendWrite(op, seq, e, offset, src, fua);
                } else {
                    int slot = m.state().slotOf(l.peer.id());
                    if (slot >= 0) {
                        m.bitmap().set(slot, offset, len);
                    }
                }
            }
            data.write(offset, src, fua);
            return op;
        } finally {
            ranges.unlock(offset, len);
            joinLock.readLock().unlock();
        }
    }

    /** FLUSH: the local disk and, through a barrier, every connected peer's. */
    void flush() throws StorageException {
        if (role != Role.PRIMARY && clients() == 0) {
            return; // nothing was written through this node (the NBD server flushes every export when it stops)
        }
        beginIo("flush", 0);
        try {
            WriteOp op;
            joinLock.readLock().lock();
            try {
                List<Session> ss = new ArrayList<>();
                for (PeerLink l : links) {
                    Session s = l.replicating();
                    if (s != null) {
                        ss.add(s);
                    }
                }
                op = new WriteOp(ss.size());
                long e = epoch.getAndIncrement();
                for (Session s : ss) {
                    s.sendBarrier(op, e);
                }
            } finally {
                joinLock.readLock().unlock();
            }
            data.flush();
            awaitPeers(op, "flush", 0);
        } finally {
            endIo();
        }
    }

    private void awaitPeers(WriteOp op, String what, long offset) throws StorageException {
        try {
            if (!op.await(WRITE_WAIT_MAX_NANOS)) {
                throw new StorageException(StorageException.Kind.IO, "resource " + name() + ": the " + what
                        + " at offset " + offset + " was not confirmed by the peers in time");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new StorageException(StorageException.Kind.IO, "interrupted", e);
        }
    }

    // ---- sessions (worker)

    GenerationIds generationIds(int slot) {
        PersistentState s = md.state();
        GenerationUuids u = s.uuids();
        return new GenerationIds(u.current(), u.bitmapUuid(slot), u.history(), disk != DiskState.INCONSISTENT,
                s.has(VolumeFlag.CRASHED_PRIMARY));
    }

    Set<Integer> connectedPeerIds() {
        Set<Integer> ids = new HashSet<>();
        for (PeerLink l : links) {
            if (l.replicating() != null) {
                ids.add(l.peer.id());
            }
        }
        return ids;
    }

    long outOfSyncBytes(PeerLink l) {
        Metadata m = md;
        if (m == null) {
            return 0;
        }
        int slot = m.state().slotOf(l.peer.id());
        return slot < 0 ? 0 : m.bitmap().dirtyBytes(slot);
    }

    /** The peer is gone: its unconfirmed writes are marked out of sync before any waiting client returns. */
    void sessionLost(PeerLink l, Session s) {
        joinLock.writeLock().lock();
        try {
            s.replicating = false;
            Metadata m = md;
            if (m != null && s.slot >= 0) {
                int marked = 0;
                for (Session.Pending p : s.transferLog.values()) {
                    m.bitmap().set(s.slot, p.offset, p.length);
                    marked++;
                }
                // written on the peer but not yet flushed there: lost if the peer lost power
                marked += s.markUnflushed(m.bitmap());
                if (s.establishedAtNanos > 0 && role == Role.PRIMARY) {
                    // DRBD: a new current UUID once a Primary lost a peer, so that peer is bitmap target later
                    m.newCurrentUuid(connectedPeerIds(), true);
                }
                if (marked > 0) {
                    LOG.info("resource {}: {} writes to {} were not confirmed; marked out of sync", name(), marked,
                            l.peer.name());
                }
                m.flush();
            }
        } catch (IOException | RuntimeException e) {
            LOG.error("resource {}: recording the loss of {}: {}", name(), l.peer.name(), e.getMessage());
        } finally {
            s.releaseWaiters();
            joinLock.writeLock().unlock();
        }
        if (s.failMessage != null && s.failState != ConnState.DISCONNECTING) {
            LOG.info("resource {} on {}: connection with {} ended: {}", name(), self.name(), l.peer.name(),
                    s.failMessage);
        }
    }

    void becomeInconsistent() throws IOException {
        if (disk != DiskState.INCONSISTENT) {
            md.commit(s -> s.withDiskState(DiskState.INCONSISTENT));
            disk = DiskState.INCONSISTENT;
            broadcastState();
            emitResource("change");
        }
    }

    void afterNoSyncHandshake(PeerLink l, Session s) {
        try {
            DiskState pd = l.peerDisk;
            if ((disk == DiskState.CONSISTENT || disk == DiskState.OUTDATED)
                    && (pd == DiskState.UP_TO_DATE || pd == DiskState.CONSISTENT)) {
                md.commit(st -> st.withDiskState(DiskState.UP_TO_DATE).with(VolumeFlag.CRASHED_PRIMARY, false));
                disk = DiskState.UP_TO_DATE;
                emitResource("change");
            } else if (md.state().has(VolumeFlag.CRASHED_PRIMARY)) {
                md.commit(st -> st.with(VolumeFlag.CRASHED_PRIMARY, false));
            }
            broadcastState();
        } catch (IOException e) {
            s.fail(ConnState.NETWORK_FAILURE, "cannot persist the state: " + e.getMessage());
        }
    }

    /** Sync target: every block arrived. Take the source's generation, become UpToDate. */
    void syncTargetFinished(PeerLink l, Session s) {
        if (s.failed()) {
            return;
        }
        try {
            data.flush();
            GenerationIds src = s.peerIds;
            boolean primary = role == Role.PRIMARY;
            md.commit(st -> st.withUuids(st.uuids().adoptedFromSyncSource(src.current(), src.history(), s.slot, primary))
                    .withDiskState(DiskState.UP_TO_DATE).with(VolumeFlag.CRASHED_PRIMARY, false));
            md.flush();
            disk = DiskState.UP_TO_DATE;
            LOG.info("resource {} on {}: resync from {} finished: UpToDate ({} bytes received)", name(), self.name(),
                    l.peer.name(), l.resyncReceivedBytes.get() - l.syncStartDoneBytes);
            l.setRepl(ReplState.ESTABLISHED);
            broadcastState();
            emitResource("change");
        } catch (IOException | RuntimeException e) {
            s.fail(ConnState.NETWORK_FAILURE, "cannot finish the resync: " + e.getMessage());
        }
    }

    /** Sync source: the target reports UpToDate. */
    void syncSourceFinished(PeerLink l, Session s) {
        if (s.failed() || !(l.repl == ReplState.SYNC_SOURCE || l.repl == ReplState.PAUSED_SYNC_S)) {
            return;
        }
        try {
            md.bitmap().clearAll(s.slot);
            boolean proven = disk == DiskState.CONSISTENT; // a restarted source is current: the peer took its data
            md.commit(st -> st.withUuids(st.uuids().withBitmapUuidCleared(s.slot)).with(VolumeFlag.CRASHED_PRIMARY,
                    false).withDiskState(proven ? DiskState.UP_TO_DATE : st.diskState()));
            md.flush();
            if (proven) {
                disk = DiskState.UP_TO_DATE;
                broadcastState();
                emitResource("change");
            }
            LOG.info("resource {} on {}: resync to {} finished ({} bytes sent)", name(), self.name(), l.peer.name(),
                    l.resyncSentBytes.get() - l.syncStartDoneBytes);
            l.setRepl(ReplState.ESTABLISHED);
        } catch (IOException | RuntimeException e) {
            s.fail(ConnState.NETWORK_FAILURE, "cannot finish the resync: " + e.getMessage());
        }
    }

    /** A connected peer rotated its current UUID (new-current-uuid); follow it if in sync. */
    void adoptPeerUuids(PeerLink l, Session s, Session.PeerFrameCopy copy) {
        if (s.failed() || l.repl != ReplState.ESTABLISHED) {
            return;
        }
        boolean clear = (copy.flags() & PeerFrame.UUID_FLAG_CLEAR_BITMAP) != 0;
        try {
            if (clear) {
                md.bitmap().clearAll(s.slot);
            } else if (disk != DiskState.UP_TO_DATE) {
                return;
            }
            boolean primary = role == Role.PRIMARY;
            GenerationIds src = copy.ids();
            md.commit(st -> st.withUuids(st.uuids().adoptedFromSyncSource(src.current(), src.history(), s.slot, primary))
                    .withDiskState(clear ? DiskState.UP_TO_DATE : st.diskState()));
            md.flush();
            s.peerIds = src;
            if (clear) {
                disk = DiskState.UP_TO_DATE;
                emitResource("change");
            }
            broadcastState();
            LOG.info("resource {} on {}: adopted {}'s current UUID {}{}", name(), self.name(), l.peer.name(),
                    GenerationUuids.format(src.current()), clear ? " (initial sync skipped)" : "");
        } catch (IOException e) {
            s.fail(ConnState.NETWORK_FAILURE, "cannot adopt the peer's UUIDs: " + e.getMessage());
        }
    }

    void invalidateRequestedBy(PeerLink l, Session s) {
        try {
            invalidateLocal(l, "requested by " + l.peer.name() + " (invalidate-remote)");
        } catch (EngineException | IOException e) {
            LOG.warn("resource {} on {}: invalidate requested by {} refused: {}", name(), self.name(), l.peer.name(),
                    e.getMessage());
        }
    }

    private void invalidateLocal(PeerLink source, String why) throws EngineException, IOException {
        if (role == Role.PRIMARY) {
            throw state("a Primary cannot discard its data (invalidate); demote it first");
        }
        Session s = source.replicating();
        if (s == null || source.peerDisk != DiskState.UP_TO_DATE) {
            throw state("invalidate needs a connected UpToDate peer to resync from");
        }
        md.commit(st -> st.withDiskState(DiskState.INCONSISTENT));
        disk = DiskState.INCONSISTENT;
        setAllBits(s.slot);
        md.flush();
        LOG.info("resource {} on {}: invalidated ({}): full resync from {}", name(), self.name(), why,
                source.peer.name());
        emitResource("change");
        // reconnect: the handshake sees an Inconsistent disk at the same generation and resyncs every marked block
        s.fail(ConnState.UNCONNECTED, "invalidate: reconnecting to resync from " + source.peer.name());
    }

    void setAllBits(int slot) {
        md.bitmap().setBits(slot, 0, limitBits);
    }

    long limitBits() {
        return limitBits;
    }

    // ---- verbs

    public String connect(String peerName, boolean discardMyData) throws EngineException {
        return onWorker(() -> {
            if (!up) {
                throw state("the resource is down (replctl up " + name() + ")");
            }
            if (discardMyData && role == Role.PRIMARY) {
                throw state("a Primary cannot discard its data; demote it first (replctl secondary " + name() + ")");
            }
            List<String> done = new ArrayList<>();
            for (PeerLink l : select(peerName)) {
                if (discardMyData) {
                    l.discardMyData = true;
                }
                if (!l.wanted || l.conn == ConnState.STANDALONE) {
                    l.lastError = null;
                    l.start();
                    done.add(l.peer.name());
                }
            }
            return name() + " on " + self.name() + ": connecting to " + (done.isEmpty() ? "(already connecting)"
                    : String.join(", ", done)) + (discardMyData ? " (discarding this node's data on split brain)" : "");
        });
    }

    public String disconnect(String peerName) throws EngineException {
        return onWorker(() -> {
            for (PeerLink l : select(peerName)) {
                l.stop(DisconnectReason.ADMIN, self.name() + " disconnected (replctl disconnect)", true);
            }
            return name() + " on " + self.name() + ": StandAlone";
        });
    }

    public String invalidate() throws EngineException {
        return onWorker(() -> {
            for (PeerLink l : links) {
                if (l.replicating() != null && l.peerDisk == DiskState.UP_TO_DATE) {
                    invalidateLocal(l, "replctl invalidate");
                    return name() + " on " + self.name() + ": invalidated; full resync from " + l.peer.name();
                }
            }
            throw state("invalidate needs a connected UpToDate peer to resync from");
        });
    }

    public String invalidateRemote(String peerName) throws EngineException {
        return onWorker(() -> {
            if (disk != DiskState.UP_TO_DATE) {
                throw state("only an UpToDate node can be the source of invalidate-remote");
            }
            List<String> asked = new ArrayList<>();
            for (PeerLink l : select(peerName)) {
                Session s = l.replicating();
                if (s == null) {
                    if (peerName != null) {
                        throw state("peer " + l.peer.name() + " is not connected");
                    }
                    continue;
                }
                if (l.peerRole == Role.PRIMARY) {
                    throw state("peer " + l.peer.name() + " is Primary and cannot discard its data");
                }
                s.sendState(PeerFrame.STATE_FLAG_INVALIDATE_REQUEST);
                asked.add(l.peer.name());
            }
            if (asked.isEmpty()) {
                throw state("no connected peer to invalidate");
            }
            return name() + " on " + self.name() + ": asked " + String.join(", ", asked)
                    + " to discard its data and resync fully from " + self.name();
        });
    }

    public String pauseSync(String peerName, boolean pause) throws EngineException {
        return onWorker(() -> {
            for (PeerLink l : select(peerName)) {
                l.pausedByMe = pause;
                Session s = l.replicating();
                if (s != null) {
                    s.sendState();
                    s.pauseChanged();
                }
            }
            return name() + " on " + self.name() + ": resync " + (pause ? "paused" : "resumed");
        });
    }

    public String newCurrentUuid(boolean clearBitmap) throws EngineException {
        return onWorker(() -> {
            if (!up) {
                throw state("the resource is down");
            }
            Set<Integer> connected = connectedPeerIds();
            boolean primary = role == Role.PRIMARY;
            GenerationUuids u;
            if (clearBitmap) {
                for (PeerLink l : links) {
                    if (l.replicating() != null && l.repl != ReplState.ESTABLISHED) {
                        throw state("peer " + l.peer.name() + " is in " + l.repl.drbdName()
                                + "; --clear-bitmap needs every connected peer Established");
                    }
                }
                u = md.newCurrentUuidClearingBitmaps(connected, primary);
                md.commit(s -> s.withDiskState(DiskState.UP_TO_DATE));
                disk = DiskState.UP_TO_DATE;
            } else {
                u = md.newCurrentUuid(connected, primary);
            }
            GenerationIds ids = new GenerationIds(u.current(), 0, u.history(), true, false);
            long flags = PeerFrame.UUID_FLAG_CONSISTENT | PeerFrame.UUID_FLAG_ADOPT
                    | (clearBitmap ? PeerFrame.UUID_FLAG_CLEAR_BITMAP : 0);
            for (PeerLink l : links) {
                Session s = l.replicating();
                if (s != null) {
                    s.sendUuids(ids, flags);
                    s.sendState();
                }
            }
            emitResource("change");
            return name() + " on " + self.name() + ": new current UUID " + GenerationUuids.format(u.current())
                    + (clearBitmap ? "; bitmaps cleared, initial sync skipped for " + connected.size() + " peer(s)" : "");
        });
    }

    void broadcastState() {
        for (PeerLink l : links) {
            Session s = l.session;
            if (s != null && !s.failed()) {
                s.sendState();
            }
        }
    }

    // ---- status and events

    public Map<String, Object> status() {
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("name", name());
        r.put("up", up);
        r.put("error", error);
        r.put("role", role.drbdName());
        r.put("disk", disk.drbdName());
        r.put("size_bytes", cfg.sizeBytes());
        r.put("device", device);
        Map<String, Object> nbd = new LinkedHashMap<>();
        nbd.put("uri", "nbd://" + self.nbd() + "/" + name());
        nbd.put("clients", clients());
        r.put("nbd", nbd);
        Metadata m = md;
        r.put("current_uuid", m == null ? null : GenerationUuids.format(m.state().uuids().current()));
        List<Map<String, Object>> peers = new ArrayList<>();
        for (PeerLink l : links) {
            peers.add(l.status());
        }
        r.put("peers", peers);
        return r;
    }

    void emitResource(String type) {
        node.emit(resourceEvent(type));
    }

    void emitConnection(PeerLink l, String type) {
        node.emit(connectionEvent(l, type));
    }

    void emitPeer(PeerLink l, String type) {
        node.emit(peerEvent(l, type));
    }

    private EngineEvent resourceEvent(String type) {
        Map<String, Object> f = new LinkedHashMap<>();
        f.put("role", role.drbdName());
        f.put("disk", disk.drbdName());
        f.put("up", up);
        if (error != null) {
            f.put("error", error);
        }
        return new EngineEvent(Instant.now(), type, "resource", name(), null, f);
    }

    private EngineEvent connectionEvent(PeerLink l, String type) {
        Map<String, Object> f = new LinkedHashMap<>();
        f.put("connection", l.conn.drbdName());
        f.put("peer_role", l.peerRole.drbdName());
        if (l.lastError != null) {
            f.put("last_error", l.lastError);
        }
        return new EngineEvent(Instant.now(), type, "connection", name(), l.peer.name(), f);
    }

    private EngineEvent peerEvent(PeerLink l, String type) {
        Map<String, Object> f = new LinkedHashMap<>();
        Map<String, Object> st = l.status();
        f.put("replication", st.get("replication"));
        f.put("peer_disk", st.get("peer_disk"));
        f.put("out_of_sync_bytes", st.get("out_of_sync_bytes"));
        f.put("sync_percent", st.get("sync_percent"));
        if (l.repl.syncing()) {
            f.put("sync_rate_bytes_per_second", st.get("sync_rate_bytes_per_second"));
            f.put("sync_eta_seconds", st.get("sync_eta_seconds"));
        }
        return new EngineEvent(Instant.now(), type, "peer-device", name(), l.peer.name(), f);
    }

    /** Once a second while a resync runs: a progress event per syncing peer (percent, rate, time left). */
    void progressTick() {
        for (PeerLink l : links) {
            if (l.repl.syncing()) {
                emitPeer(l, "change");
            }
        }
    }

    void snapshot(List<EngineEvent> out) {
        out.add(resourceEvent("exists"));
        for (PeerLink l : links) {
            out.add(connectionEvent(l, "exists"));
            out.add(peerEvent(l, "exists"));
        }
    }

    void shutdownWorker() {
        worker.shutdown();
    }
}
