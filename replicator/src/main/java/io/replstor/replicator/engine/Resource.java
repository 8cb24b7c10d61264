package io.replstor.replicator.engine;

import io.netty.buffer.ByteBuf;
import io.replstor.common.io.BlockDevice;
import io.replstor.common.io.StorageException;
import io.replstor.replicator.DiskState;
import io.replstor.replicator.Role;
import io.replstor.replicator.authority.RoleAuthority;
import io.replstor.replicator.authority.RoleView;
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
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * One replicated resource on this node: its disk and metadata, and a {@link PeerLink} per peer. The
 * parts, each a class of its own:
 * <ul>
 *   <li>{@link RoleControl}: promotion, demotion, deposition, the in-sync set, auto-promote;</li>
 *   <li>{@link WritePath}: the Primary's reads, writes and FLUSH (activity log, range locks, peers);</li>
 *   <li>{@link ReplicaSync}: generations, bitmaps and the disk state as peers connect, resync and go;</li>
 *   <li>{@link StatusView}: the status document and the events;</li>
 *   <li>{@link InSyncGate}: the Primary's side of the in-sync set (rule 2 of DESIGN §5).</li>
 * </ul>
 *
 * <p>One owner: every change of the resource's role, disk, connection and replication state runs on
 * the resource's <em>worker</em>, a single thread; event loops, appliers, I/O threads and the role
 * authority post to it ({@link #post}) and never change that state themselves, so events are
 * emitted in the order the changes happened. Only the I/O path ({@link WritePath}) runs on the
 * callers' threads; it reads the state and moves data.
 */
public final class Resource {
    private static final Logger LOG = LoggerFactory.getLogger(Resource.class);
    /** How long an admin verb may take before its caller is told it did not finish. */
    private static final long VERB_TIMEOUT_SECONDS = 120;

    final ReplicationNode node;
    final ResourceConfig cfg;
    final NodeConfig self;
    final DiskConfig diskConfig;
    final List<PeerLink> links = new ArrayList<>();
    private final ExecutorService worker;
    /**
     * Held (read) by every write while it is queued to the sessions; a handshake's cut, a lost session
     * and a deposition take it (write) so that each write is on one side of them for every peer.
     */
    final ReentrantReadWriteLock joinLock = new ReentrantReadWriteLock();
    final RoleAuthority authority;
    final InSyncGate gate;
    final RoleControl roles;
    final WritePath writes;
    final ReplicaSync sync;
    final StatusView statusView;
    private final ReplicatedVolume volume;
    /** The node is stopping: nothing waits for the cluster store any more. */
    private volatile boolean stopping;

    volatile boolean up;
    volatile String error;
    /** The kernel NBD device this resource is attached to on this node (replctl attach), or null. */
    private volatile String device;
    volatile DiskState disk = DiskState.DISKLESS;
    volatile Metadata md;
    volatile BlockDevice data;

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
        this.authority = node.authority();
        this.statusView = new StatusView(this);
        this.sync = new ReplicaSync(this);
        this.writes = new WritePath(this);
        this.roles = new RoleControl(this, authority);
        this.gate = new InSyncGate(this, authority);
        this.volume = new ReplicatedVolume(this);
        roles.watch();
    }

    /** Runs {@code task} on the worker unless the resource is shutting down (any thread). */
    void post(Runnable task) {
        try {
            worker.execute(task);
        } catch (RejectedExecutionException e) {
            // shutting down: nothing more to do
        }
    }

    ExecutorService worker() {
        return worker;
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
        return roles.role();
    }

    public DiskState disk() {
        return disk;
    }

    public boolean isUp() {
        return up;
    }

    /** The authority's newest view of this resource as this node knows it. */
    RoleView view() {
        return roles.view();
    }

    /** The term this node writes in; 0 while it is not Primary. */
    long writeTerm() {
        return roles.writeTerm();
    }

    /** A view the authority returned for one of this node's own requests (any thread): keep it if newer. */
    void viewCommitted(RoleView v) {
        roles.viewCommitted(v);
    }

    long granularity() {
        return sync.granularity();
    }

    long outOfSyncBytes(PeerLink l) {
        return sync.outOfSyncBytes(l);
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
        return await(worker.submit(task));
    }

    /**
     * Runs {@code task} on the worker and waits for the future it returns (admin verbs whose outcome
     * the role authority decides).
     */
    <T> T onWorkerAsync(Callable<CompletableFuture<T>> task) throws EngineException {
        return await(onWorker(task));
    }

    /** Waits (bounded) for an admin verb's outcome; its failure becomes an {@link EngineException}. */
    private <T> T await(Future<T> f) throws EngineException {
        try {
            return f.get(VERB_TIMEOUT_SECONDS, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new EngineException(EngineException.Code.IO, "interrupted");
        } catch (TimeoutException e) {
            throw new EngineException(EngineException.Code.IO, "resource " + name() + " on " + self.name()
                    + ": the request did not finish within " + VERB_TIMEOUT_SECONDS + " s");
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            if (c instanceof EngineException ee) {
                throw ee;
            }
            throw new EngineException(EngineException.Code.IO, "resource " + name() + " on " + self.name() + ": "
                    + c.getMessage(), c);
        }
    }

    EngineException state(String msg) {
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
            statusView.emitResource("change");
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
            sync.attached(m);
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
            roles.resetToSecondary();
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
            statusView.emitResource("change");
            throw new EngineException(EngineException.Code.IO, name() + " on " + self.name() + ": " + error, e);
        }
    }

    /** DRBD's {@code down}: disconnect, detach, close the metadata cleanly. Refused while clients use it. */
    public String down(boolean shutdown) throws EngineException {
        return onWorker(() -> {
            if (!up) {
                return name() + " on " + self.name() + " is already down";
            }
            int clients = roles.clients();
            if (clients > 0 && !shutdown) {
                throw new EngineException(EngineException.Code.IN_USE, name() + " on " + self.name() + " has "
                        + clients + " NBD client(s); disconnect them first");
            }
            if (role() == Role.PRIMARY) {
                roles.demoteNow(shutdown ? self.name() + " is stopping" : "replctl down");
                roles.awaitDemotionRecorded(3_000);
            }
            for (PeerLink l : links) {
                l.stop(DisconnectReason.SHUTDOWN, self.name() + " is taking " + name() + " down", true);
            }
            detach();
            statusView.emitResource("change");
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
        roles.resetToSecondary();
    }


    // ---- roles

    /** The verb {@code primary [--force]}: waits for the committed promotion (admin threads only). */
    public String primary(boolean force) throws EngineException {
        return primary(force, null);
    }

    /** @param reason the operator's reason, recorded with the promotion; null for none */
    public String primary(boolean force, String reason) throws EngineException {
        String why = (force ? "replctl primary --force" : "replctl primary") + (reason == null ? "" : ": " + reason);
        return onWorkerAsync(() -> roles.primaryVerb(force, why));
    }

    public String secondary() throws EngineException {
        return onWorkerAsync(roles::secondaryVerb);
    }

    /** See {@link ReplicationNode#beginShutdown}. */
    void beginShutdown() {
        stopping = true;
        gate.failWaiting("resource " + name() + " on " + self.name() + ": the node is stopping while the write"
                + " waited for the cluster store; it was not acknowledged");
    }

    boolean stopping() {
        return stopping;
    }

    // ---- NBD clients and I/O (ReplicatedVolume)

    CompletableFuture<String> admitAsync(String client) {
        return roles.admitAsync(client);
    }

    String admit(String client) {
        return roles.admit(client);
    }

    void release(String client) {
        roles.release(client);
    }

    void read(long offset, int length, ByteBuf dst) throws StorageException {
        writes.read(offset, length, dst);
    }

    void write(long offset, ByteBuf src, boolean fua) throws StorageException {
        writes.write(offset, src, fua);
    }

    void writeAsync(long offset, ByteBuf src, boolean fua, BlockDevice.WriteCompletion done) throws StorageException {
        writes.writeAsync(offset, src, fua, done);
    }

    void flush() throws StorageException {
        writes.flush();
    }

    // ---- verbs

    public String connect(String peerName, boolean discardMyData) throws EngineException {
        return onWorker(() -> {
            if (!up) {
                throw state("the resource is down (replctl up " + name() + ")");
            }
            if (discardMyData && role() == Role.PRIMARY) {
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
                    sync.invalidateLocal(l, "replctl invalidate");
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
            Set<Integer> connected = sync.connectedPeerIds();
            boolean primary = role() == Role.PRIMARY;
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
            statusView.emitResource("change");
            return name() + " on " + self.name() + ": new current UUID " + GenerationUuids.format(u.current())
                    + (clearBitmap ? "; bitmaps cleared, initial sync skipped for " + connected.size() + " peer(s)" : "");
        });
    }


    // ---- status and events

    public Map<String, Object> status() {
        return statusView.status();
    }

    /** Once a second (any thread): progress events of running resyncs, emitted on the worker. */
    void progressTick() {
        post(statusView::progressTick);
    }

    /** Every peer-ack-delay (any thread): a Primary that wrote sends a barrier, on the worker. */
    void peerAckTick() {
        if (up && role() == Role.PRIMARY) {
            post(writes::periodicBarrier);
        }
    }

    void snapshot(List<EngineEvent> out) {
        statusView.snapshot(out);
    }

    void shutdownWorker() {
        worker.shutdown();
    }
}
