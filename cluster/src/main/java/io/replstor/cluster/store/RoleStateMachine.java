package io.replstor.cluster.store;

import io.replstor.cluster.store.StoreCommand.Promote;
import io.replstor.cluster.store.StoreCommand.Renew;
import org.apache.ratis.io.MD5Hash;
import org.apache.ratis.proto.RaftProtos.LogEntryProto;
import org.apache.ratis.protocol.Message;
import org.apache.ratis.protocol.RaftClientRequest;
import org.apache.ratis.protocol.RaftGroupId;
import org.apache.ratis.protocol.RaftGroupMemberId;
import org.apache.ratis.protocol.RaftPeerId;
import org.apache.ratis.server.RaftServer;
import org.apache.ratis.server.protocol.TermIndex;
import org.apache.ratis.server.raftlog.RaftLog;
import org.apache.ratis.server.storage.FileInfo;
import org.apache.ratis.server.storage.RaftStorage;
import org.apache.ratis.statemachine.TransactionContext;
import org.apache.ratis.statemachine.impl.BaseStateMachine;
import org.apache.ratis.statemachine.impl.SimpleStateMachineStorage;
import org.apache.ratis.statemachine.impl.SingleFileSnapshotInfo;
import org.apache.ratis.thirdparty.com.google.protobuf.ByteString;
import org.apache.ratis.util.MD5FileUtil;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * The cluster store's Raft state machine. {@link #applyTransaction} is the only writer of the replicated
 * {@link StoreState}; it runs on Ratis' apply thread in log order. {@link #startTransaction} runs on the
 * leader before an entry is appended and is where the one timing decision is made: whether a Primary's
 * lease has expired, so that a promotion may depose it (the apply re-checks it deterministically).
 *
 * <p>Snapshots: one JSON file per snapshot in Ratis' state machine directory, named by the applied
 * term and index, with an MD5 file beside it ({@link SimpleStateMachineStorage}); taken automatically
 * every {@link StoreTimings#snapshotThreshold()} entries, after which Ratis purges the log up to it.
 */
final class RoleStateMachine extends BaseStateMachine {
    private static final Logger LOG = LoggerFactory.getLogger(RoleStateMachine.class);

    /** What the store hears from the state machine (on Ratis' threads: must not block). */
    interface Events {
        /** A resource changed; called on the apply thread in log order. */
        void onResourceChanged(ResourceState changed);

        /** {@code leader} leads the group now. */
        void onLeaderChanged(String leader);
    }

    private final String self;
    private final StoreMembers members;
    private final StoreTimings timings;
    private final Leases leases;
    private final Events events;
    private final SimpleStateMachineStorage storage = new SimpleStateMachineStorage();
    private volatile StoreState state;
    private volatile long snapshotLoadedIndex = RaftLog.INVALID_LOG_INDEX;
    private volatile long snapshotTakenIndex = RaftLog.INVALID_LOG_INDEX;

    RoleStateMachine(String self, StoreMembers members, StoreTimings timings, Leases leases, Events events) {
        this.self = self;
        this.members = members;
        this.timings = timings;
        this.leases = leases;
        this.events = events;
        this.state = StoreState.initial(members);
    }

    StoreState state() {
        return state;
    }

    /** The index of the snapshot this member restored at start (or after an install), -1 if none. */
    long snapshotLoadedIndex() {
        return snapshotLoadedIndex;
    }

    long snapshotTakenIndex() {
        return snapshotTakenIndex;
    }

    @Override
    public void initialize(RaftServer server, RaftGroupId groupId, RaftStorage raftStorage) throws IOException {
        super.initialize(server, groupId, raftStorage);
        storage.init(raftStorage);
        load(storage.getLatestSnapshot());
    }

    /** After the leader installed a snapshot on this member (it was too far behind for the log). */
    @Override
    public void reinitialize() throws IOException {
        load(storage.loadLatestSnapshot());
    }

    @Override
    public SimpleStateMachineStorage getStateMachineStorage() {
        return storage;
    }

    @Override
    public TransactionContext startTransaction(RaftClientRequest request) throws IOException {
        ByteString data = request.getMessage().getContent();
        TransactionContext.Builder b = TransactionContext.newBuilder().setStateMachine(this).setClientRequest(request)
                .setLogData(data);
        StoreCommand command;
        try {
            command = StoreJson.command(data);
        } catch (IOException e) {
            return b.build().setException(new StoreRefusal("malformed cluster store command: " + e.getMessage()));
        }
        if (command instanceof Promote p) {
            Map<String, Long> deposed = new LinkedHashMap<>();
            String refusal = depositions(p, deposed);
            if (refusal != null) {
                return b.build().setException(new StoreRefusal(refusal));
            }
            b.setLogData(StoreJson.command(p.withDeposed(deposed)));
        }
        return b.build();
    }

    /**
     * Which current Primaries {@code p} may depose: those whose latest renewal this leader applied longer
     * than {@link StoreTimings#depositionDelay()} ago, stamped with that renewal's sequence number.
     *
     * @return null, or the refusal naming a Primary whose lease may still run
     */
    private String depositions(Promote p, Map<String, Long> deposed) {
        StoreState s = state;
        ResourceState cur = s.resource(p.resource());
        if (cur == null || cur.primaries().contains(p.node())) {
            return null; // the apply answers these
        }
        long delayNs = timings.depositionDelay().toNanos();
        for (String primary : cur.primaries()) {
            long since = leases.sinceAppliedNs(primary);
            if (since <= delayNs) {
                return primary + " is Primary of " + cur.name() + " (term " + cur.term() + "); its lease was renewed "
                        + Leases.seconds(since) + " ago and runs " + Leases.seconds(delayNs - since)
                        + " more: it can be replaced only when it expires";
            }
            deposed.put(primary, s.leaseSeq(primary));
        }
        return null;
    }

    @Override
    public CompletableFuture<Message> applyTransaction(TransactionContext trx) {
        LogEntryProto entry = trx.getLogEntry();
        TermIndex ti = TermIndex.valueOf(entry);
        StoreReply reply;
        try {
            reply = apply(StoreJson.command(entry.getStateMachineLogEntry().getLogData()), ti.getIndex());
        } catch (IOException e) {
            // an entry this version cannot read changes nothing here; every member of this version skips it alike
            LOG.error("cluster store {}: cannot read log entry {}: {}", members.cluster(), ti, e.toString());
            reply = StoreReply.refused("malformed cluster store command at index " + ti.getIndex());
        }
        updateLastAppliedTermIndex(ti);
        return CompletableFuture.completedFuture(Message.valueOf(StoreJson.reply(reply)));
    }

    private StoreReply apply(StoreCommand command, long index) {
        StoreState.Outcome o = state.apply(command, index, members);
        state = o.state();
        if (command instanceof Renew r && !o.reply().failed()) {
            leases.onRenewApplied(r.node(), r.seq());
        }
        if (o.changed() != null) {
            events.onResourceChanged(o.changed());
        }
        return o.reply();
    }

    /** A read: the whole applied state as JSON (linearizable when the server's read option says so). */
    @Override
    public CompletableFuture<Message> query(Message request) {
        return CompletableFuture.completedFuture(Message.valueOf(StoreJson.state(state)));
    }

    @Override
    public void notifyLeaderChanged(RaftGroupMemberId groupMemberId, RaftPeerId newLeaderId) {
        String leader = newLeaderId.toString();
        if (leader.equals(self)) {
            leases.resetAll(members.names());
        }
        events.onLeaderChanged(leader);
    }

    @Override
    public long takeSnapshot() throws IOException {
        // Ratis calls this on the apply thread between entries: state and applied index belong together
        StoreState s = state;
        TermIndex applied = getLastAppliedTermIndex();
        if (applied.getIndex() < 0) {
            return RaftLog.INVALID_LOG_INDEX;
        }
        Path file = storage.getSnapshotFile(applied.getTerm(), applied.getIndex()).toPath();
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        byte[] bytes = StoreJson.snapshot(new StoreJson.Snapshot(StoreJson.SNAPSHOT_FORMAT, members.cluster(), s));
        long started = System.nanoTime();
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            ch.write(java.nio.ByteBuffer.wrap(bytes));
            ch.force(true);
        }
        Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        MD5Hash md5 = MD5FileUtil.computeAndSaveMd5ForFile(file.toFile());
        storage.updateLatestSnapshot(new SingleFileSnapshotInfo(new FileInfo(file, md5), applied));
        snapshotTakenIndex = applied.getIndex();
        LOG.debug("cluster store {}: snapshot at {} ({} bytes, {} ms)", members.cluster(), applied, bytes.length,
                TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started));
        return applied.getIndex();
    }

    private void load(SingleFileSnapshotInfo snapshot) throws IOException {
        if (snapshot == null) {
            return;
        }
        Path file = snapshot.getFile().getPath();
        if (snapshot.getFile().getFileDigest() != null) {
            MD5FileUtil.verifySavedMD5(file.toFile(), snapshot.getFile().getFileDigest());
        }
        StoreJson.Snapshot s = StoreJson.snapshot(Files.readAllBytes(file));
        if (s.format() != StoreJson.SNAPSHOT_FORMAT) {
            throw new IOException(file + ": snapshot format " + s.format() + ", this version reads "
                    + StoreJson.SNAPSHOT_FORMAT);
        }
        if (!members.cluster().equals(s.cluster())) {
            throw new IOException(file + ": a snapshot of cluster '" + s.cluster() + "', not '" + members.cluster()
                    + "': is raft-dir shared between clusters?");
        }
        StoreState before = state;
        state = s.state().withResourcesOf(members);
        setLastAppliedTermIndex(snapshot.getTermIndex());
        snapshotLoadedIndex = snapshot.getIndex();
        LOG.info("cluster store {}: restored from snapshot {} ({} resources)", members.cluster(),
                snapshot.getTermIndex(), state.resources().size());
        for (ResourceState r : state.resources().values()) {
            ResourceState old = before.resource(r.name());
            if (old == null || old.version() != r.version()) {
                events.onResourceChanged(r);
            }
        }
    }
}
