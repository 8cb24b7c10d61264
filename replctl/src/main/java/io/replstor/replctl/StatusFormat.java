package io.replstor.replctl;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.List;
import java.util.Locale;

/**
 * The human form of {@code GET /status}: for a replicated node like {@code drbdadm status}
 *
 * <pre>
 * r0 role:Primary term:5 quorum:yes
 *   disk:UpToDate device:/dev/nbd0 in-sync:alpha,beta
 *   beta role:Secondary connection:Connected
 *     replication:SyncSource peer-disk:Inconsistent done:45.10 rate:12.3MiB/s eta:0:12 out-of-sync:1.2GiB
 * </pre>
 *
 * (device when the resource is attached to a kernel NBD device, done/rate/eta only while a resync
 * runs, out-of-sync when there is any, {@code last-error:} and
 * {@code error:} lines when set); for a plain {@code repld serve} node (no {@code resources}) a
 * table of its exports.
 */
final class StatusFormat {
    private StatusFormat() {
    }

    static String format(JsonNode s) {
        if (!s.has("resources") && s.has("exports")) {
            return exports(s);
        }
        StringBuilder b = new StringBuilder();
        for (JsonNode res : s.path("resources")) {
            resource(b, res);
        }
        if (b.length() == 0) {
            b.append("no resources").append(s.hasNonNull("node") ? " on node " + s.get("node").asText() : "")
                    .append('\n');
        }
        return b.toString();
    }

    static void resource(StringBuilder b, JsonNode res) {
        boolean up = res.path("up").asBoolean(true);
        b.append(res.path("name").asText());
        if (up) {
            b.append(" role:").append(text(res, "role", "Unknown"));
            if (res.path("cluster_store").asBoolean(false)) {
                b.append(" term:").append(res.path("term").asLong()).append(" quorum:")
                        .append(res.path("quorum").asBoolean() ? "yes" : "no");
            } else if (res.has("cluster_store")) {
                b.append(" quorum:off");
            }
            b.append('\n');
            b.append("  disk:").append(text(res, "disk", "DUnknown"));
            if (res.hasNonNull("device")) {
                b.append(" device:").append(res.get("device").asText());
            }
            if (res.path("cluster_store").asBoolean(false)) {
                List<String> inSync = new java.util.ArrayList<>();
                res.path("in_sync").forEach(n -> inSync.add(n.asText()));
                b.append(" in-sync:").append(inSync.isEmpty() ? "-" : String.join(",", inSync));
            }
            b.append('\n');
            if (res.hasNonNull("suspended")) {
                b.append("  suspended:").append(res.get("suspended").asText()).append('\n');
            }
            if (res.path("cluster_store").asBoolean(false) && !res.path("quorum").asBoolean(true)) {
                b.append("  quorum:no ").append(res.path("quorum_detail").asText()).append('\n');
            }
            for (JsonNode w : res.path("warnings")) {
                b.append("  warning:").append(w.asText()).append('\n');
            }
        } else {
            b.append(" down\n");
        }
        if (res.hasNonNull("error")) {
            b.append("  error:").append(res.get("error").asText()).append('\n');
        }
        if (!up) {
            return;
        }
        for (JsonNode p : res.path("peers")) {
            peer(b, p);
        }
    }

    private static void peer(StringBuilder b, JsonNode p) {
        String connection = text(p, "connection", "Unknown");
        String peerRole = text(p, "peer_role", "Unknown");
        b.append("  ").append(text(p, "peer", "node " + p.path("node_id").asText("?")));
        if (!"Unknown".equals(peerRole)) {
            b.append(" role:").append(peerRole);
        }
        b.append(" connection:").append(connection).append('\n');
        String replication = text(p, "replication", "Off");
        b.append("    replication:").append(replication).append(" peer-disk:").append(text(p, "peer_disk", "DUnknown"));
        if (resyncRunning(replication)) {
            b.append(String.format(Locale.ROOT, " done:%.2f", p.path("sync_percent").asDouble()));
            b.append(" rate:").append(StatusFormat.human(p.path("sync_rate_bytes_per_second").asLong())).append("/s");
            if (p.hasNonNull("sync_eta_seconds")) {
                b.append(" eta:").append(duration(p.get("sync_eta_seconds").asLong()));
            }
        }
        if (p.path("resync_paused").asBoolean(false)) {
            b.append(" resync-suspended:user");
        }
        long oos = p.path("out_of_sync_bytes").asLong(0);
        if (oos > 0) {
            b.append(" out-of-sync:").append(human(oos));
        }
        b.append('\n');
        if (p.hasNonNull("last_error")) {
            b.append("    last-error:").append(p.get("last_error").asText()).append('\n');
        }
    }

    /** SyncSource, SyncTarget, PausedSyncS, PausedSyncT. */
    static boolean resyncRunning(String replication) {
        return replication.startsWith("Sync") || replication.startsWith("PausedSync");
    }

    /** "0:12", "12:05", "1:02:03". */
    static String duration(long seconds) {
        long h = seconds / 3600;
        long m = seconds / 60 % 60;
        long s = seconds % 60;
        return h > 0 ? String.format(Locale.ROOT, "%d:%02d:%02d", h, m, s)
                : String.format(Locale.ROOT, "%d:%02d", m, s);
    }

    private static String text(JsonNode n, String key, String dflt) {
        JsonNode v = n.get(key);
        return v == null || v.isNull() ? dflt : v.asText();
    }

    /** The plain serve node: a header and one row per export. */
    private static String exports(JsonNode s) {
        StringBuilder b = new StringBuilder();
        b.append(String.format("replstor %s  pid %d  up %ds  nbd %s (tls %s)  %d connection(s)%n",
                s.path("version").asText(), s.path("pid").asLong(), s.path("uptime_seconds").asLong(),
                s.path("nbd").path("listen").asText(), s.path("nbd").path("tls").asText(),
                s.path("nbd").path("connections").asInt()));
        b.append(String.format("%-16s %10s %-4s %5s %10s %10s %10s %6s  %s%n", "EXPORT", "SIZE", "MODE", "CONNS",
                "REQUESTS", "READ", "WRITTEN", "ERRORS", "PATH"));
        for (JsonNode e : s.path("exports")) {
            b.append(String.format("%-16s %10s %-4s %5d %10d %10s %10s %6d  %s%n", e.path("name").asText(),
                    human(e.path("size_bytes").asLong()), e.path("readonly").asBoolean() ? "ro" : "rw",
                    e.path("connections").asInt(), e.path("requests").asLong(), human(e.path("bytes_read").asLong()),
                    human(e.path("bytes_written").asLong()), e.path("errors").asLong(), e.path("path").asText()));
        }
        return b.toString();
    }

    /** "512B", "1.2GiB". */
    static String human(long bytes) {
        String[] units = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
        double v = bytes;
        int i = 0;
        while (v >= 1024 && i < units.length - 1) {
            v /= 1024;
            i++;
        }
        return i == 0 ? bytes + "B" : String.format(Locale.ROOT, "%.1f%s", v, units[i]);
    }
}
