package io.replstor.replicator.engine;

import io.replstor.replicator.DiskState;
import io.replstor.replicator.Role;
import io.replstor.replicator.meta.VolumeFlag;
import io.replstor.replicator.net.DisconnectReason;
import io.replstor.replicator.net.PeerFrame;
import io.replstor.replicator.sync.GenerationIds;
import io.replstor.replicator.sync.SyncDecider;
import io.replstor.replicator.sync.SyncDecision;
import io.replstor.replicator.sync.SyncSide;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The handshake of an authenticated session: both sides describe their disk (UUIDS, STATE), run
 * {@link SyncDecider} on the same inputs and reach the mirrored verdict: stay in sync, resync one way
 * (then the bitmaps are exchanged, as a union, and the target pulls), or part (split brain,
 * unrelated data).
 *
 * <p>The cut: under the join lock, this side sends what its disk holds up to that instant and turns
 * replication on, so every write after it reaches the peer, which holds it until its own decision.
 * Writes to the other peers go on meanwhile.
 *
 * <p>It never blocks the resource's worker: each step runs on the worker when the peer's frames for it
 * have arrived ({@link #peerUuids}, {@link #peerState}, {@link #peerBitmap}), within the handshake
 * timeout. Since other work of the resource runs between the steps, the decision is taken only if
 * what the cut described is still true (role, disk state, generation); otherwise the session ends and
 * the handshake starts over.
 */
final class SessionHandshake {
    private static final Logger LOG = LoggerFactory.getLogger(SessionHandshake.class);

    private final Session s;
    private final Resource res;
    private final PeerLink link;
    final CompletableFuture<Session.PeerFrameCopy> peerUuids = new CompletableFuture<>();
    final CompletableFuture<Integer> peerState = new CompletableFuture<>();
    final CompletableFuture<Boolean> peerBitmap = new CompletableFuture<>();
    /** Completes with true when this side decided to stay connected; the applier holds data until then. */
    private final CompletableFuture<Boolean> decided = new CompletableFuture<>();
    private volatile boolean done;

    // the cut
    private long waitMs;
    private GenerationIds mine;
    private long myDirtyBits;
    private boolean iAmPrimary;
    private long myDataTerm;
    private DiskState myDisk;
    private long doneBefore;

    SessionHandshake(Session s) {
        this.s = s;
        this.res = s.res;
        this.link = s.link;
    }

    /** Whether this side decided to stay connected. */
    boolean done() {
        return done;
    }

    /** The applier's first task: nothing of the peer's is applied before the decision. */
    void awaitDecision() {
        try {
            decided.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (ExecutionException e) {
            // failed: every later task sees it
        }
    }

    /** The session failed: nothing waits for the peer any more. */
    void abandon(String why) {
        decided.complete(false);
        IllegalStateException e = new IllegalStateException(why);
        peerUuids.completeExceptionally(e);
        peerState.completeExceptionally(e);
        peerBitmap.completeExceptionally(e);
    }

    /** Worker. */
    void start() {
        long delay = res.node.faults().handshakeDelayMs();
        if (delay > 0) {
            res.node.group().schedule(() -> res.post(this::begin), delay, TimeUnit.MILLISECONDS);
        } else {
            begin();
        }
    }

    private void begin() {
        if (s.failed()) {
            link.lost(s);
            return;
        }
        waitMs = Math.max(10_000, res.cfg.timers().timeout().toMillis() * 2);
        try {
            cut();
        } catch (Exception e) {
            failed(e);
            return;
        }
        peerUuids.thenCombine(peerState, (u, st) -> u).orTimeout(waitMs, TimeUnit.MILLISECONDS)
                .whenCompleteAsync((theirs, e) -> step(e, () -> decide(theirs)), res.worker());
    }

    /**
     * What this side sends describes its disk up to here, and every write after it is replicated to the
     * peer. Under the join lock, but without waiting for the peer.
     */
    private void cut() throws java.io.IOException {
        res.joinLock.writeLock().lock();
        try {
            s.slot = res.md.assignPeerSlot(link.peer.id());
            mine = res.sync.generationIds(s.slot);
            myDirtyBits = res.md.bitmap().dirtyBits(s.slot);
            iAmPrimary = res.role() == Role.PRIMARY;
            myDataTerm = res.md.state().dataTerm();
            myDisk = res.disk;
            long flags = (mine.consistent() ? PeerFrame.UUID_FLAG_CONSISTENT : 0)
                    | (mine.crashedPrimary() ? PeerFrame.UUID_FLAG_CRASHED_PRIMARY : 0)
                    | (link.discardMyData ? PeerFrame.UUID_FLAG_DISCARD_MY_DATA : 0)
                    | (res.md.state().has(VolumeFlag.UNCONFIRMED_WRITES) ? PeerFrame.UUID_FLAG_UNCONFIRMED : 0);
            s.sendUuids(mine, flags);
            s.sendState();
            s.replicating = true;
        } finally {
            res.joinLock.writeLock().unlock();
        }
    }

    /** What changed since the cut, or null: a decision on a stale description would be wrong. */
    private String changedSinceCut() {
        if ((res.role() == Role.PRIMARY) != iAmPrimary) {
            return "this node became " + res.role().drbdName();
        }
        if (res.disk != myDisk) {
            return "this node's disk became " + res.disk.drbdName();
        }
        GenerationIds now = res.sync.generationIds(s.slot);
        if (now.current() != mine.current() || now.bitmap() != mine.bitmap()) {
            return "this node's generation changed";
        }
        return null;
    }

    private void decide(Session.PeerFrameCopy theirs) {
        String changed = changedSinceCut();
        if (changed != null) {
            String why = changed + " during the handshake with " + link.name() + "; starting it over";
            LOG.info("resource {}: {}", res.name(), why);
            s.fail(ConnState.UNCONNECTED, why);
            link.lost(s);
            return;
        }
        s.peerIds = theirs.ids();
        s.peerUuidFlags = theirs.flags();
        boolean peerDiscards = (theirs.flags() & PeerFrame.UUID_FLAG_DISCARD_MY_DATA) != 0;
        SyncSide me = new SyncSide(res.self.id(), res.self.name(), mine, iAmPrimary, myDirtyBits,
                link.discardMyData, myDataTerm);
        SyncSide them = new SyncSide(link.peer.id(), link.peer.name(), s.peerIds,
                link.peerRole == Role.PRIMARY, 0, peerDiscards, s.peerDataTerm);
        SyncDecision decision = SyncDecider.decide(me, them, res.cfg.afterSb());
        LOG.info("resource {}: handshake with {}: {}", res.name(), link.name(), decision);
        String refusal = refusal(decision, me, them);
        if (refusal != null) {
            return;
        }
        boolean sameData = GenerationIds.masked(mine.current()) == GenerationIds.masked(s.peerIds.current());
        boolean stay = decision.kind().connects()
                || (decision.kind() == SyncDecision.Kind.NO_CONSISTENT_SOURCE && sameData);
        if (!stay) {
            link.setLastError(decision.reason());
            LOG.error("resource {}: {} with {}: {}; going StandAlone", res.name(),
                    decision.splitBrainDetected() ? "split brain detected" : decision.kind(), link.name(),
                    decision.reason());
            link.wanted = false;
            s.disconnect(decision.splitBrainDetected() ? DisconnectReason.SPLIT_BRAIN
                    : DisconnectReason.UNRELATED_DATA, decision.reason(), ConnState.STANDALONE, decision.reason());
            link.lost(s);
            return;
        }
        link.discardMyData = false;
        link.setLastError(null);
        s.establishedAtNanos = System.nanoTime();
        done = true;
        decided.complete(true);
        link.setConn(ConnState.CONNECTED);
        SyncDecision.Kind k = decision.kind();
        if (!k.isSync()) {
            link.setRepl(ReplState.ESTABLISHED);
            res.sync.afterNoSyncHandshake(link, s);
            return;
        }
        startSync(k.isSource(), k.isFull());
    }

    /**
     * Verdicts this node does not act on now (the session ends and is retried): a Primary made a resync
     * target, a resync from a Secondary while a Primary exists, a second resync source.
     *
     * @return the reason, or null to go on
     */
    private String refusal(SyncDecision decision, SyncSide me, SyncSide them) {
        String why = null;
        boolean target = decision.kind().isSync() && !decision.kind().isSource();
        String primaryElsewhere;
        PeerLink syncing;
        if (decision.resolution() == SyncDecision.Resolution.TERMS
                && (decision.kind().isSource() ? them.primary() : me.primary())) {
            // a Primary cannot become a resync target under its clients: the deposed side learns its
            // deposition from the cluster store soon (it demotes itself), and the next attempt resyncs it
            why = "the handshake would make the Primary " + (decision.kind().isSource() ? them.nodeName()
                    : me.nodeName()) + " a resync target (" + decision.reason() + "); retrying once it learns"
                    + " it was deposed";
            LOG.warn("resource {}: {}", res.name(), why);
            link.setLastError(why);
        } else if (target && res.authority.enforcing() && !res.authority.leaseValid()) {
            // this node's lease runs once the store has applied a renewal it sent after it started, and
            // with it every role change before: until then it cannot tell whether a Primary exists
            why = "waiting for this node's cluster store to catch up (its lease is not running yet) before "
                    + "resyncing from " + link.name() + " (" + decision.reason() + ")";
            LOG.info("resource {}: {}", res.name(), why);
        } else if (target && (primaryElsewhere = res.roles.primaryOtherThan(link)) != null) {
            // a resync from a Secondary cannot carry the writes the Primary makes meanwhile (they reach
            // that Secondary, not this node): while there is a Primary, resync from it
            why = "waiting to resync from the Primary " + primaryElsewhere + " rather than from " + link.name()
                    + " (" + decision.reason() + ")";
            LOG.info("resource {}: {}", res.name(), why);
        } else if (target && (syncing = res.sync.syncTargetOf(link)) != null) {
            // one resync source at a time: after it this node's generation is the source's, and the
            // next handshake with this peer decides again from there
            why = "already a resync target of " + syncing.name() + "; " + link.name()
                    + " is reconnected after that resync (" + decision.reason() + ")";
            LOG.info("resource {}: {}", res.name(), why);
        }
        if (why != null) {
            s.fail(ConnState.UNCONNECTED, why);
            link.lost(s);
        }
        return why;
    }

    private void startSync(boolean source, boolean full) {
        link.setRepl(source ? ReplState.WF_BITMAP_S : ReplState.WF_BITMAP_T);
        try {
            if (full) {
                res.sync.setAllBits(s.slot);
            }
            if (!source) {
                res.sync.becomeInconsistent();
            }
        } catch (Exception e) {
            failed(e);
            return;
        }
        // the baseline before the exchange: the target may start pulling before this side has the peer's bitmap
        doneBefore = source ? link.resyncSentBytes.get() : link.resyncReceivedBytes.get();
        link.syncStartDoneBytes = doneBefore;
        link.syncStartNanos = System.nanoTime();
        s.sendBitmap();
        peerBitmap.orTimeout(waitMs * 6, TimeUnit.MILLISECONDS)
                .whenCompleteAsync((ok, e) -> step(e, () -> bitmapsExchanged(source, full)), res.worker());
    }

    private void bitmapsExchanged(boolean source, boolean full) throws Exception {
        if (s.failed()) {
            link.lost(s);
            return;
        }
        res.md.flush();
        long movedMeanwhile = (source ? link.resyncSentBytes.get() : link.resyncReceivedBytes.get()) - doneBefore;
        link.syncTotalBits = res.md.bitmap().dirtyBits(s.slot) + movedMeanwhile / res.granularity();
        LOG.info("resource {}: {} resync {} {}: {} bytes out of sync", res.name(), full ? "full" : "bitmap-based",
                source ? "to" : "from", link.name(), link.syncTotalBits * res.granularity());
        if (source) {
            link.setRepl(link.paused() ? ReplState.PAUSED_SYNC_S : ReplState.SYNC_SOURCE);
            if (link.peerDisk == DiskState.UP_TO_DATE) {
                // the target needed nothing and reported UpToDate while this side was still exchanging bitmaps
                res.sync.syncSourceFinished(link, s);
            }
        } else {
            link.setRepl(link.paused() ? ReplState.PAUSED_SYNC_T : ReplState.SYNC_TARGET);
            s.resync.restart();
            s.resync.pull();
        }
    }

    private interface Step {
        void run() throws Exception;
    }

    /** Runs the next step unless the peer's part failed or timed out. Worker. */
    private void step(Throwable e, Step next) {
        if (e != null) {
            failed(e);
            return;
        }
        try {
            next.run();
        } catch (Exception ex) {
            failed(ex);
        }
    }

    private void failed(Throwable e) {
        Throwable c = e instanceof CompletionException && e.getCause() != null ? e.getCause() : e;
        if (s.failed()) {
            // the connection ended while we waited (a lost channel, or the peer's DISCONNECT with its
            // verdict, which is already in last_error): nothing to add
            LOG.info("resource {}: handshake with {} ended: {}", res.name(), link.name(), s.failMessage);
        } else {
            String why = c instanceof TimeoutException ? link.name() + " did not answer the handshake within "
                    + waitMs + " ms" : c.getMessage() == null ? c.toString() : c.getMessage();
            LOG.warn("resource {}: handshake with {} failed: {}", res.name(), link.name(), why, c);
            link.setLastError(why);
            s.fail(ConnState.PROTOCOL_ERROR, why);
        }
        link.lost(s);
    }
}
