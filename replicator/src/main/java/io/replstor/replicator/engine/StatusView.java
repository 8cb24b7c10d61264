package io.replstor.replicator.engine;

import io.replstor.replicator.Role;
import io.replstor.replicator.authority.QuorumState;
import io.replstor.replicator.authority.RoleView;
import io.replstor.replicator.config.ResourceConfig;
import io.replstor.replicator.meta.GenerationUuids;
import io.replstor.replicator.meta.Metadata;
import io.replstor.replicator.meta.VolumeFlag;

import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * What a resource shows of itself: the status document ({@code GET /status}, {@code replctl status
 * --json}; schema in cluster/README.md) and the events of {@code replctl events} (one per state
 * change, DRBD's events2 objects resource, connection and peer-device). It reads state, never
 * changes it; events are emitted by the code that made the change, on the resource's worker, so
 * they come in the order the changes happened.
 */
final class StatusView {
    private final Resource res;

    StatusView(Resource res) {
        this.res = res;
    }

    Map<String, Object> status() {
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("name", res.name());
        r.put("up", res.up);
        r.put("error", res.error);
        r.put("role", res.role().drbdName());
        r.put("disk", res.disk.drbdName());
        r.put("size_bytes", res.cfg.sizeBytes());
        r.put("device", res.device());
        Map<String, Object> nbd = new LinkedHashMap<>();
        nbd.put("uri", "nbd://" + res.self.nbd() + "/" + res.name());
        nbd.put("clients", res.roles.clients());
        r.put("nbd", nbd);
        Metadata m = res.md;
        r.put("current_uuid", m == null ? null : GenerationUuids.format(m.state().uuids().current()));
        RoleView v = res.view();
        QuorumState q = res.authority.quorum();
        r.put("cluster_store", res.authority.enforcing());
        r.put("term", v.term());
        r.put("write_term", res.writeTerm());
        r.put("data_term", m == null ? null : m.state().dataTerm());
        r.put("unconfirmed_writes", m != null && m.state().has(VolumeFlag.UNCONFIRMED_WRITES));
        r.put("primaries", new TreeSet<>(v.primaries()));
        r.put("in_sync", new TreeSet<>(v.inSync()));
        r.put("quorum", q.present());
        r.put("quorum_detail", q.why());
        r.put("lease_valid", res.authority.leaseValid());
        r.put("suspended", suspendedWhy());
        r.put("last_role_change", v.lastChange());
        r.put("warnings", warnings());
        List<Map<String, Object>> peers = new ArrayList<>();
        for (PeerLink l : res.links) {
            peers.add(l.status());
        }
        r.put("peers", peers);
        return r;
    }

    /** Why this node's I/O waits, or null. */
    String suspendedWhy() {
        if (res.role() != Role.PRIMARY) {
            return null;
        }
        String g = res.gate.suspendedWhy();
        if (g != null) {
            return g;
        }
        if (!res.authority.leaseValid() && !res.roles.forcedWithoutQuorum()) {
            return "I/O " + (res.cfg.onNoQuorum() == ResourceConfig.OnNoQuorum.IO_ERROR ? "fails" : "suspended")
                    + ": this Primary's lease in the cluster store lapsed (" + res.authority.quorum().why() + ")";
        }
        return null;
    }

    private List<String> warnings() {
        List<String> w = new ArrayList<>();
        if (!res.authority.enforcing() && !res.links.isEmpty()) {
            w.add("quorum off: each node decides its role from its own view; two nodes can both become Primary"
                    + " (split brain), which is detected when they reconnect, not prevented; add a witness and set"
                    + " quorum = \"majority\" to prevent it");
        }
        if (res.roles.forcedWithoutQuorum() && res.role() == Role.PRIMARY) {
            w.add("Primary by --force without the cluster store (no quorum): split brain is possible");
        }
        Metadata m = res.md;
        if (m != null && m.state().has(VolumeFlag.UNCONFIRMED_WRITES)) {
            w.add(res.self.name() + " lost a Primary while it held writes of it not known to be on every replica (none"
                    + " was acknowledged); they are marked out of sync for every peer until the next Primary resyncs"
                    + " them");
        }
        String pending = res.roles.demotionPending();
        if (pending != null) {
            w.add("the cluster store has not yet recorded that " + res.self.name() + " is Secondary (" + pending
                    + "); no other node can be promoted until it does");
        }
        return w;
    }

    // ---- events

    void emitResource(String type) {
        res.node.emit(resourceEvent(type));
    }

    void emitConnection(PeerLink l, String type) {
        res.node.emit(connectionEvent(l, type));
    }

    void emitPeer(PeerLink l, String type) {
        res.node.emit(peerEvent(l, type));
    }

    private EngineEvent resourceEvent(String type) {
        Map<String, Object> f = new LinkedHashMap<>();
        f.put("role", res.role().drbdName());
        f.put("disk", res.disk.drbdName());
        f.put("up", res.up);
        RoleView v = res.view();
        QuorumState q = res.authority.quorum();
        f.put("term", v.term());
        f.put("quorum", q.present() ? "yes" : "no");
        if (!q.present()) {
            f.put("quorum_detail", q.why());
        }
        f.put("in_sync", RoleView.names(v.inSync()).replace(", ", ","));
        String susp = suspendedWhy();
        if (susp != null) {
            f.put("suspended", susp);
        }
        if (res.error != null) {
            f.put("error", res.error);
        }
        return new EngineEvent(Instant.now(), type, "resource", res.name(), null, f);
    }

    private EngineEvent connectionEvent(PeerLink l, String type) {
        Map<String, Object> f = new LinkedHashMap<>();
        f.put("connection", l.conn.drbdName());
        f.put("peer_role", l.peerRole.drbdName());
        if (l.lastError != null) {
            f.put("last_error", l.lastError);
        }
        return new EngineEvent(Instant.now(), type, "connection", res.name(), l.peer.name(), f);
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
        return new EngineEvent(Instant.now(), type, "peer-device", res.name(), l.peer.name(), f);
    }

    /** Once a second while a resync runs: a progress event per syncing peer (percent, rate, time left). */
    void progressTick() {
        for (PeerLink l : res.links) {
            if (l.repl.syncing()) {
                emitPeer(l, "change");
            }
        }
    }

    void snapshot(List<EngineEvent> out) {
        out.add(resourceEvent("exists"));
        for (PeerLink l : res.links) {
            out.add(connectionEvent(l, "exists"));
            out.add(peerEvent(l, "exists"));
        }
    }
}
