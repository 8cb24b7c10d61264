package io.replstor.cluster.store;

import org.apache.ratis.RaftConfigKeys;
import org.apache.ratis.client.RaftClientConfigKeys;
import org.apache.ratis.conf.RaftProperties;
import org.apache.ratis.netty.NettyConfigKeys;
import org.apache.ratis.protocol.RaftGroup;
import org.apache.ratis.protocol.RaftGroupId;
import org.apache.ratis.protocol.RaftPeer;
import org.apache.ratis.rpc.SupportedRpcType;
import org.apache.ratis.server.RaftServerConfigKeys;
import org.apache.ratis.util.SizeInBytes;
import org.apache.ratis.util.TimeDuration;

import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** The Ratis settings of the cluster store, all in one place. */
final class StoreProperties {
    private static final String LOOPBACK = "127.0.0.1";
    private static final long APPEND_RETRY_MS = 100;
    private static final long PREALLOCATE_MAX_BYTES = 64 << 10;
    private static final SizeInBytes WRITE_BUFFER = SizeInBytes.valueOf(512 << 10);
    private static final SizeInBytes APPENDER_BATCH = SizeInBytes.valueOf(256 << 10);

    private StoreProperties() {
    }

    /**
     * Every node of the file as a voting member, peer id = node name.
     *
     * @param others      the address this node uses for each other member (its gateway's loopback listener)
     * @param selfAddress this node's own entry (its Ratis server ignores it; its client needs the real port)
     */
    static RaftGroup group(RaftGroupId id, StoreMembers members, Map<String, InetSocketAddress> others,
                           String selfAddress) {
        List<RaftPeer> peers = new ArrayList<>();
        for (String name : members.names()) {
            InetSocketAddress a = others.get(name);
            peers.add(RaftPeer.newBuilder().setId(name)
                    .setAddress(a == null ? selfAddress : a.getHostString() + ":" + a.getPort()).build());
        }
        return RaftGroup.valueOf(id, peers);
    }

    static RaftProperties server(Path dir, StoreTimings t) {
        RaftProperties p = common(t);
        NettyConfigKeys.Server.setHost(p, LOOPBACK); // only the gateway is reachable from other machines
        NettyConfigKeys.Server.setPort(p, 0);
        NettyConfigKeys.Server.setUseEpoll(p, false);
        RaftServerConfigKeys.setStorageDir(p, List.of(dir.toFile()));
        RaftServerConfigKeys.Rpc.setTimeoutMin(p, millis(t.electionTimeoutMin()));
        RaftServerConfigKeys.Rpc.setTimeoutMax(p, millis(t.electionTimeoutMax()));
        RaftServerConfigKeys.Rpc.setRequestTimeout(p, millis(t.attemptTimeout()));
        // how soon the leader tries a failed follower again (each try dials through the gateway)
        RaftServerConfigKeys.Rpc.setSleepTime(p, TimeDuration.valueOf(APPEND_RETRY_MS, TimeUnit.MILLISECONDS));
        RaftServerConfigKeys.Read.setOption(p, RaftServerConfigKeys.Read.Option.LINEARIZABLE);
        RaftServerConfigKeys.Read.setTimeout(p, millis(t.readTimeout()));
        RaftServerConfigKeys.Snapshot.setAutoTriggerEnabled(p, true);
        RaftServerConfigKeys.Snapshot.setAutoTriggerThreshold(p, t.snapshotThreshold());
        // a crash takes no snapshot either: every start restores from snapshot + log
        RaftServerConfigKeys.Snapshot.setTriggerWhenStopEnabled(p, false);
        RaftServerConfigKeys.Snapshot.setRetentionFileNum(p, 2);
        RaftServerConfigKeys.Log.setPurgeUptoSnapshotIndex(p, true);
        RaftServerConfigKeys.Log.setPurgeGap(p, (int) Math.min(Integer.MAX_VALUE, t.snapshotThreshold()));
        RaftServerConfigKeys.Log.setSegmentSizeMax(p, SizeInBytes.valueOf(t.logSegmentBytes()));
        RaftServerConfigKeys.Log.setPreallocatedSize(p, SizeInBytes.valueOf(Math.min(t.logSegmentBytes(),
                PREALLOCATE_MAX_BYTES)));
        RaftServerConfigKeys.Log.setWriteBufferSize(p, WRITE_BUFFER);
        RaftServerConfigKeys.Log.Appender.setBufferByteLimit(p, APPENDER_BATCH);
        return p;
    }

    static RaftProperties client(StoreTimings t) {
        return common(t);
    }

    /** Both sides: the Netty transport, and how long one attempt (client) or one server RPC may take. */
    private static RaftProperties common(StoreTimings t) {
        RaftProperties p = new RaftProperties();
        RaftConfigKeys.Rpc.setType(p, SupportedRpcType.NETTY);
        NettyConfigKeys.Client.setUseEpoll(p, false);
        RaftClientConfigKeys.Rpc.setRequestTimeout(p, millis(t.attemptTimeout()));
        return p;
    }

    private static TimeDuration millis(Duration d) {
        return TimeDuration.valueOf(d.toMillis(), TimeUnit.MILLISECONDS);
    }
}
