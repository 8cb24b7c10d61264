package io.replstor.replicator.engine;

import io.replstor.replicator.DiskState;
import io.replstor.replicator.Role;
import io.replstor.replicator.meta.GenerationUuids;
import io.replstor.replicator.meta.Metadata;
import io.replstor.replicator.meta.PersistentState;
import io.replstor.replicator.meta.VolumeFlag;
import io.replstor.replicator.net.PeerFrame;
import io.replstor.replicator.sync.GenerationIds;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.util.BitSet;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * This replica's disk against its peers: the generation UUIDs, the per-peer bitmaps and the disk
 * state, as handshakes, resyncs, lost sessions and the peers' own generation changes move them
 * (DESIGN §4). Every method runs on the resource's worker, except where it says otherwise.
 *
 * <p>The rules it keeps: nothing unconfirmed is assumed in sync (a lost session marks every write the
 * peer did not confirm, and every write it confirmed but had not flushed); a Primary that loses a
 * peer starts a new generation, which its connected in-sync peers adopt so that every node holding
 * the new data names it alike; a resync target takes its source's generation when the last block has
 * arrived, and tells its other peers.
 */
final class ReplicaSync {
    private static final Logger LOG = LoggerFactory.getLogger(ReplicaSync.class);

    private final Resource res;
    /** Bits of the data area, for setting a whole bitmap (set on attach). */
    private volatile long limitBits;

    ReplicaSync(Resource res) {
        this.res = res;
    }

    void attached(Metadata m) {
        limitBits = (res.cfg.sizeBytes() + m.bitmap().granularityBytes() - 1) / m.bitmap().granularityBytes();
    }

    long limitBits() {
        return limitBits;
    }

    long granularity() {
        Metadata m = res.md;
        return m == null ? 4096 : m.bitmap().granularityBytes();
    }

    void setAllBits(int slot) {
        res.md.bitmap().setBits(slot, 0, limitBits);
    }

    /** This node's generation identifiers as the peer of {@code slot} sees them (the handshake's cut). */
    GenerationIds generationIds(int slot) {
        PersistentState s = res.md.state();
        GenerationUuids u = s.uuids();
        return new GenerationIds(u.current(), u.bitmapUuid(slot), u.history(), res.disk != DiskState.INCONSISTENT,
                s.has(VolumeFlag.CRASHED_PRIMARY));
    }

    Set<Integer> connectedPeerIds() {
        Set<Integer> ids = new HashSet<>();
        for (PeerLink l : res.links) {
            if (l.replicating() != null) {
                ids.add(l.peer.id());
            }
        }
        return ids;
    }

    /** Bytes marked out of sync for {@code l}'s peer (any thread). */
    long outOfSyncBytes(PeerLink l) {
        Metadata m = res.md;
        if (m == null) {
            return 0;
        }
        int slot = m.state().slotOf(l.peer.id());
        return slot < 0 ? 0 : m.bitmap().dirtyBytes(slot);
    }

    /** The peer other than {@code except} this node is (about to be) a resync target of, or null. */
    PeerLink syncTargetOf(PeerLink except) {
        for (PeerLink l : res.links) {
            if (l != except && l.repl.isSyncTarget()) {
                return l;
            }
        }
        return null;
    }

    void broadcastState() {
        for (PeerLink l : res.links) {
            Session s = l.session;
            if (s != null && !s.failed()) {
                s.sendState();
            }
        }
    }

    /**
     * A replicated write from {@code from} reached this replica but not every peer of it: each peer not
     * among {@code targets} misses it, so it is marked out of sync for that peer here too (with three or
     * more replicas, any of them may later be the one that resyncs it). Applier thread.
     */
    void markForNonTargets(PeerLink from, int targets, long offset, int length) {
        Metadata m = res.md;
        for (PeerLink l : res.links) {
            if (l != from && (targets & (1 << l.peer.id())) == 0) {
                int slot = m.state().slotOf(l.peer.id());
                if (slot >= 0) {
                    m.bitmap().set(slot, offset, length);
                }
            }
        }
    }

    /**
     * A PEER_ACK showed that the nodes in {@code missing} lack a write {@code from} sent this replica:
     * it is marked for each of them that is a peer here (applier thread).
     */
    void markMissing(PeerLink from, int missing, long offset, int length) {
        Metadata m = res.md;
        for (PeerLink l : res.links) {
            if (l != from && (missing & (1 << l.peer.id())) != 0) {
                int slot = m.state().slotOf(l.peer.id());
                if (slot >= 0) {
                    m.bitmap().set(slot, offset, length);
                }
            }
        }
    }

    /**
     * The session with {@code l}'s peer ended while this replica kept writes of it that no peer
     * acknowledgement had shown on every replica (the peer was, or had been, Primary): they may have
     * reached some replicas and not others, and none of them was acknowledged. Each is marked for every
     * peer, the Primary's slot included, and the volume is flagged {@link VolumeFlag#UNCONFIRMED_WRITES}
     * until the next Primary has resynced them (worker, after the session's applier stopped).
     */
    void primaryWritesLost(PeerLink l, UnconfirmedWrites writes) {
        Metadata m = res.md;
        if (writes.count() == 0 || m == null) {
            return;
        }
        try {
            long n = writes.drain((missing, off, len) -> {
                for (PeerLink p : res.links) {
                    int slot = m.state().slotOf(p.peer.id());
                    if (slot >= 0) {
                        m.bitmap().set(slot, off, len);
                    }
                }
            });
            m.flush();
            if (!m.state().has(VolumeFlag.UNCONFIRMED_WRITES)) {
                m.commit(st -> st.with(VolumeFlag.UNCONFIRMED_WRITES, true));
            }
            LOG.warn("resource {} on {}: lost {} with {} of its writes not yet known to be on every replica: marked "
                    + "out of sync for every peer; the next Primary resyncs them", res.name(), res.self.name(),
                    l.peer.name(), n);
            broadcastState();
        } catch (IOException | RuntimeException e) {
            LOG.error("resource {} on {}: recording the unconfirmed writes of {}: {}", res.name(), res.self.name(),
                    l.peer.name(), e.getMessage());
        }
    }

    /**
     * A new current UUID on a node that has replicating peers (a Primary that lost a peer, or promoted
     * without all of them): the connected, in-sync peers follow it, so that every node that holds the
     * new data names it the same; the absent ones start their bitmaps from the old one on every node.
     */
    GenerationUuids rotateCurrentUuid(Set<Integer> connected, boolean primary) throws IOException {
        GenerationUuids u = res.md.newCurrentUuid(connected, primary);
        int followers = 1 << res.self.id();
        for (PeerLink l : res.links) {
            if (connected.contains(l.peer.id())) {
                followers |= 1 << l.peer.id();
            }
        }
        GenerationIds ids = new GenerationIds(u.current(), 0, u.history(), true, false);
        for (PeerLink l : res.links) {
            Session s = l.replicating();
            if (s != null && connected.contains(l.peer.id())) {
                s.sendUuids(ids, PeerFrame.UUID_FLAG_CONSISTENT | PeerFrame.UUID_FLAG_ADOPT, followers);
            }
        }
        return u;
    }

    /**
     * After a promotion: a connected peer this node holds writes for (it received them from the previous
     * Primary, and the peer did not) handshakes again, so that the bitmaps are exchanged and it resyncs
     * from here. {@code reconnecting} are already on their way.
     */
    List<Session> toReconcile() {
        Metadata m = res.md;
        List<Session> out = new java.util.ArrayList<>();
        for (PeerLink l : res.links) {
            Session s = l.replicating();
            int slot = m.state().slotOf(l.peer.id());
            if (s != null && slot >= 0 && (m.bitmap().dirtyBits(slot) > 0 || l.peerUnconfirmed)) {
                out.add(s);
            }
        }
        return out;
    }

    /** Ends the sessions {@link #toReconcile} named, after the promotion's new generation left them behind. */
    void reconcileAfterPromotion(List<Session> reconcile) {
        for (Session s : reconcile) {
            s.fail(ConnState.UNCONNECTED, res.self.name() + " is Primary now, and it or " + s.link.peer.name()
                    + " holds writes the other may lack (from the previous Primary): reconnecting to resync "
                    + s.link.peer.name() + " from " + res.self.name());
        }
    }

    /** The peer is gone: its unconfirmed writes are marked out of sync before any waiting client returns. */
    void sessionLost(PeerLink l, Session s) {
        res.joinLock.writeLock().lock();
        try {
            s.replicating = false;
            Metadata m = res.md;
            if (m != null && s.slot >= 0) {
                int marked = s.transfer.markUnconfirmed(m.bitmap(), s.slot);
                if (s.establishedAtNanos > 0 && res.role() == Role.PRIMARY) {
                    // DRBD: a new current UUID once a Primary lost a peer, so that peer is bitmap target later
                    rotateCurrentUuid(connectedPeerIds(), true);
                }
                if (marked > 0) {
                    LOG.info("resource {}: {} writes to {} were not confirmed; marked out of sync", res.name(), marked,
                            l.peer.name());
                }
                m.flush();
            }
        } catch (IOException | RuntimeException e) {
            LOG.error("resource {}: recording the loss of {}: {}", res.name(), l.peer.name(), e.getMessage());
        } finally {
            s.transfer.settleWaiters(s.failMessage == null ? l.peer.name() + " was lost" : s.failMessage);
            res.joinLock.writeLock().unlock();
        }
        res.writes.peerAcks.lost(s);
        res.roles.reconcileInSync();
        if (s.failMessage != null && s.failState != ConnState.DISCONNECTING) {
            LOG.info("resource {} on {}: connection with {} ended: {}", res.name(), res.self.name(), l.peer.name(),
                    s.failMessage);
        }
    }

    void becomeInconsistent() throws IOException {
        if (res.disk != DiskState.INCONSISTENT) {
            res.md.commit(s -> s.withDiskState(DiskState.INCONSISTENT));
            res.disk = DiskState.INCONSISTENT;
            broadcastState();
            res.statusView.emitResource("change");
        }
    }

    void afterNoSyncHandshake(PeerLink l, Session s) {
        Metadata md = res.md;
        try {
            boolean unconfirmed = md.state().has(VolumeFlag.UNCONFIRMED_WRITES)
                    || (s.peerUuidFlags & PeerFrame.UUID_FLAG_UNCONFIRMED) != 0;
            if (unconfirmed && md.bitmap().dirtyBits(s.slot) > 0) {
                // not moot: writes of a lost Primary that one of the two may lack; the next Primary resyncs them
                LOG.info("resource {} on {}: {} holds the same generation, but {} bytes marked for it are writes of a "
                        + "lost Primary: kept for the next Primary to resync", res.name(), res.self.name(),
                        l.peer.name(), md.bitmap().dirtyBytes(s.slot));
            } else if (s.peerIds != null && GenerationIds.masked(s.peerIds.current())
                    == GenerationIds.masked(md.state().uuids().current())
                    && (md.bitmap().dirtyBits(s.slot) > 0 || md.state().uuids().bitmapUuid(s.slot) != 0)) {
                // the same generation on both sides is the same data: what was marked for this peer while
                // it was away reached it another way (a resync from a third node). The slot's bitmap UUID
                // goes too, even with no bits set: left stale, it would keep a later follow of a new
                // generation (followedNewCurrent) from recording this node's old generation for the peer
                LOG.info("resource {} on {}: {} holds the same generation: clearing {} bytes marked out of sync for"
                        + " it", res.name(), res.self.name(), l.peer.name(), md.bitmap().dirtyBytes(s.slot));
                md.bitmap().clearAll(s.slot);
                md.commit(st -> st.withUuids(st.uuids().withBitmapUuid(s.slot, 0)));
                md.flush();
            }
            DiskState pd = l.peerDisk;
            if ((res.disk == DiskState.CONSISTENT || res.disk == DiskState.OUTDATED)
                    && (pd == DiskState.UP_TO_DATE || pd == DiskState.CONSISTENT)) {
                md.commit(st -> st.withDiskState(DiskState.UP_TO_DATE).with(VolumeFlag.CRASHED_PRIMARY, false));
                res.disk = DiskState.UP_TO_DATE;
                res.statusView.emitResource("change");
            } else if (md.state().has(VolumeFlag.CRASHED_PRIMARY)) {
                md.commit(st -> st.with(VolumeFlag.CRASHED_PRIMARY, false));
            }
            broadcastState();
            res.roles.reconcileInSync();
        } catch (IOException e) {
            s.fail(ConnState.NETWORK_FAILURE, "cannot persist the state: " + e.getMessage());
        }
    }

    /** Sync target: every block arrived. Take the source's generation, become UpToDate. */
    void syncTargetFinished(PeerLink l, Session s) {
        if (s.failed()) {
            return;
        }
        Metadata md = res.md;
        try {
            res.data.flush();
            GenerationIds src = s.peerIds;
            boolean primary = res.role() == Role.PRIMARY;
            long srcTerm = s.peerDataTerm;
            boolean fromPrimary = l.peerRole == Role.PRIMARY;
            md.commit(st -> st.withUuids(st.uuids().adoptedFromSyncSource(src.current(), src.history(), s.slot, primary))
                    .withDiskState(DiskState.UP_TO_DATE).with(VolumeFlag.CRASHED_PRIMARY, false)
                    .with(VolumeFlag.UNCONFIRMED_WRITES, false).withDataTerm(srcTerm));
            if (fromPrimary) {
                clearMootMarks(l, src);
            }
            md.flush();
            res.disk = DiskState.UP_TO_DATE;
            LOG.info("resource {} on {}: resync from {} finished: UpToDate ({} bytes received)", res.name(),
                    res.self.name(), l.peer.name(), l.resyncReceivedBytes.get() - l.syncStartDoneBytes);
            l.setRepl(ReplState.ESTABLISHED);
            GenerationUuids now = md.state().uuids();
            GenerationIds ids = new GenerationIds(now.current(), 0, now.history(), true, false);
            for (PeerLink other : res.links) {
                Session os = other.replicating();
                if (other != l && os != null) {
                    os.sendUuids(ids, PeerFrame.UUID_FLAG_CONSISTENT | PeerFrame.UUID_FLAG_RESYNCED);
                }
            }
            broadcastState();
            res.statusView.emitResource("change");
        } catch (IOException | RuntimeException e) {
            s.fail(ConnState.NETWORK_FAILURE, "cannot finish the resync: " + e.getMessage());
        }
    }

    /**
     * After a resync from the Primary {@code source}, this node holds its data: what it had marked for a
     * connected peer that is at the same generation is the Primary's to track (any write of it such a
     * peer lacks is in the Primary's bitmap), so those marks are moot here.
     */
    private void clearMootMarks(PeerLink source, GenerationIds src) {
        Metadata md = res.md;
        for (PeerLink other : res.links) {
            Session os = other.replicating();
            if (other == source || os == null || os.slot < 0 || os.peerIds == null
                    || other.repl != ReplState.ESTABLISHED || other.peerDisk != DiskState.UP_TO_DATE
                    || GenerationIds.masked(os.peerIds.current()) != GenerationIds.masked(src.current())
                    || md.bitmap().dirtyBits(os.slot) == 0) {
                continue;
            }
            LOG.info("resource {} on {}: {} is at the generation just resynced from the Primary {}: {} bytes marked "
                    + "for it are the Primary's to resync", res.name(), res.self.name(), other.peer.name(),
                    source.peer.name(), md.bitmap().dirtyBytes(os.slot));
            md.bitmap().clearAll(os.slot);
            res.statusView.emitPeer(other, "change");
        }
    }

    /** Sync source: the target reports UpToDate. */
    void syncSourceFinished(PeerLink l, Session s) {
        if (s.failed() || !(l.repl == ReplState.SYNC_SOURCE || l.repl == ReplState.PAUSED_SYNC_S)) {
            return;
        }
        Metadata md = res.md;
        try {
            md.bitmap().clearAll(s.slot);
            boolean proven = res.disk == DiskState.CONSISTENT; // a restarted source is current: the peer took its data
            md.commit(st -> st.withUuids(st.uuids().withBitmapUuidCleared(s.slot)).with(VolumeFlag.CRASHED_PRIMARY,
                    false).withDiskState(proven ? DiskState.UP_TO_DATE : st.diskState()));
            md.flush();
            if (proven) {
                res.disk = DiskState.UP_TO_DATE;
                broadcastState();
                res.statusView.emitResource("change");
            }
            LOG.info("resource {} on {}: resync to {} finished ({} bytes sent)", res.name(), res.self.name(),
                    l.peer.name(), l.resyncSentBytes.get() - l.syncStartDoneBytes);
            l.setRepl(ReplState.ESTABLISHED);
            res.roles.reconcileInSync();
        } catch (IOException | RuntimeException e) {
            s.fail(ConnState.NETWORK_FAILURE, "cannot finish the resync: " + e.getMessage());
        }
    }

    /** A connected peer rotated its current UUID (new-current-uuid, a new generation); follow it if in sync. */
    void adoptPeerUuids(PeerLink l, Session s, Session.PeerFrameCopy copy) {
        if (s.failed() || l.repl != ReplState.ESTABLISHED) {
            return;
        }
        Metadata md = res.md;
        boolean clear = (copy.flags() & PeerFrame.UUID_FLAG_CLEAR_BITMAP) != 0;
        try {
            if (clear) {
                md.bitmap().clearAll(s.slot);
            } else if (res.disk != DiskState.UP_TO_DATE) {
                return;
            }
            boolean primary = res.role() == Role.PRIMARY;
            GenerationIds src = copy.ids();
            // the peers the new generation does not reach keep their bitmaps from the old one here too
            BitSet behind = new BitSet();
            if (copy.followers() != 0) {
                for (PeerLink other : res.links) {
                    int slot = md.state().slotOf(other.peer.id());
                    if (other != l && slot >= 0 && (copy.followers() & (1 << other.peer.id())) == 0) {
                        behind.set(slot);
                    }
                }
            }
            md.commit(st -> st.withUuids(st.uuids().followedNewCurrent(src.current(), src.history(), s.slot, behind,
                    primary)).withDiskState(clear ? DiskState.UP_TO_DATE : st.diskState()));
            md.flush();
            s.peerIds = src;
            if (clear) {
                res.disk = DiskState.UP_TO_DATE;
                res.statusView.emitResource("change");
            }
            broadcastState();
            LOG.info("resource {} on {}: adopted {}'s current UUID {}{}", res.name(), res.self.name(), l.peer.name(),
                    GenerationUuids.format(src.current()), clear ? " (initial sync skipped)" : "");
        } catch (IOException e) {
            s.fail(ConnState.NETWORK_FAILURE, "cannot adopt the peer's UUIDs: " + e.getMessage());
        }
    }

    /**
     * A connected peer finished a resync from a third node and now holds {@code copy}'s generation: if
     * that is this node's own (and this disk is UpToDate), the two hold the same data, and the writes
     * marked for the peer while it missed them are moot (each was written before that resync began).
     */
    void peerResynced(PeerLink l, Session s, Session.PeerFrameCopy copy) {
        if (s.failed() || l.repl != ReplState.ESTABLISHED || res.disk != DiskState.UP_TO_DATE || s.slot < 0) {
            return;
        }
        s.peerIds = copy.ids();
        Metadata md = res.md;
        if (GenerationIds.masked(copy.ids().current()) != GenerationIds.masked(md.state().uuids().current())) {
            return;
        }
        try {
            long bytes = md.bitmap().dirtyBytes(s.slot);
            md.bitmap().clearAll(s.slot);
            md.commit(st -> st.withUuids(st.uuids().withBitmapUuid(s.slot, 0)));
            md.flush();
            if (bytes > 0) {
                LOG.info("resource {} on {}: {} resynced to this generation: {} bytes marked for it are in sync",
                        res.name(), res.self.name(), l.peer.name(), bytes);
            }
            res.statusView.emitPeer(l, "change");
        } catch (IOException e) {
            LOG.error("resource {} on {}: clearing the bitmap for {}: {}", res.name(), res.self.name(), l.peer.name(),
                    e.getMessage());
        }
    }

    void invalidateRequestedBy(PeerLink l) {
        try {
            invalidateLocal(l, "requested by " + l.peer.name() + " (invalidate-remote)");
        } catch (EngineException | IOException e) {
            LOG.warn("resource {} on {}: invalidate requested by {} refused: {}", res.name(), res.self.name(),
                    l.peer.name(), e.getMessage());
        }
    }

    /** Discards this node's data: a full resync from {@code source}, which must be connected and UpToDate. */
    void invalidateLocal(PeerLink source, String why) throws EngineException, IOException {
        if (res.role() == Role.PRIMARY) {
            throw res.state("a Primary cannot discard its data (invalidate); demote it first");
        }
        Session s = source.replicating();
        if (s == null || source.peerDisk != DiskState.UP_TO_DATE) {
            throw res.state("invalidate needs a connected UpToDate peer to resync from");
        }
        res.md.commit(st -> st.withDiskState(DiskState.INCONSISTENT));
        res.disk = DiskState.INCONSISTENT;
        setAllBits(s.slot);
        res.md.flush();
        LOG.info("resource {} on {}: invalidated ({}): full resync from {}", res.name(), res.self.name(), why,
                source.peer.name());
        res.statusView.emitResource("change");
        // reconnect: the handshake sees an Inconsistent disk at the same generation and resyncs every marked block
        s.fail(ConnState.UNCONNECTED, "invalidate: reconnecting to resync from " + source.peer.name());
    }
}
