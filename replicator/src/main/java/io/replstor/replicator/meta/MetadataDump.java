package io.replstor.replicator.meta;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.replstor.common.Sizes;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.List;
import java.util.SortedSet;
import java.util.stream.Collectors;

/**
 * {@code dump-md}: the metadata of a stopped node, as JSON (snake_case keys, UUIDs as 16 upper-case
 * hex digits like drbdadm) or as text for people. Works on metadata opened read-only
 * ({@link #open}), which changes nothing on disk.
 *
 * <p>JSON fields: {@code resource, node_id, placement, location, data_size_bytes,
 * last_agreed_size_bytes, metadata_offset_bytes, metadata_size_bytes, metadata_device_size_bytes,
 * max_peers, bitmap_granularity_bytes, al_extent_size_bytes, al_extents, al_ring_blocks,
 * superblock {transaction, copy, other_copy}, disk_state, consistent, flags[], data_term, current_uuid,
 * history_uuids[], peers[] {slot, node_id, bitmap_uuid, flags[], out_of_sync_bits,
 * out_of_sync_bytes}, bitmap_flush_sequence, activity_log {clean_shutdown, newest_transaction,
 * extents_in_log[], extents_to_resync[], torn_tail}, warnings[]}.
 */
public final class MetadataDump {
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private MetadataDump() {
    }

    /** Opens the metadata read-only (the devices too, if opened from paths); close it when done. */
    public static Metadata open(MetaDisk disk) throws IOException {
        if (!disk.readOnly()) {
            throw new IllegalArgumentException("dump-md opens the metadata read-only; open the devices read-only");
        }
        return Metadata.open(disk);
    }

    public static ObjectNode tree(Metadata md) {
        MetadataGeometry g = md.geometry();
        PersistentState s = md.state();
        ObjectNode root = JSON.createObjectNode();
        root.put("resource", g.resourceName());
        root.put("node_id", g.nodeId());
        root.put("placement", g.external() ? "external" : "internal");
        root.put("location", md.describe());
        root.put("data_size_bytes", g.dataSizeBytes());
        root.put("last_agreed_size_bytes", s.lastAgreedSizeBytes());
        root.put("metadata_offset_bytes", g.mdOffsetBytes());
        root.put("metadata_size_bytes", g.mdSizeBytes());
        root.put("metadata_device_size_bytes", g.mdDeviceSizeBytes());
        root.put("max_peers", g.maxPeers());
        root.put("bitmap_granularity_bytes", g.bitmapGranularityBytes());
        root.put("al_extent_size_bytes", g.alExtentSizeBytes());
        root.put("al_extents", g.alExtents());
        root.put("al_ring_blocks", g.alRingBlocks());
        ObjectNode sb = root.putObject("superblock");
        sb.put("transaction", md.superblockTransaction());
        sb.put("copy", md.openReport().superblockCopy());
        sb.put("other_copy", md.openReport().otherCopy().toString());
        root.put("disk_state", s.diskState().drbdName());
        root.put("consistent", s.consistent());
        ArrayNode flags = root.putArray("flags");
        s.flags().forEach(f -> flags.add(f.label()));
        root.put("data_term", s.dataTerm());
        root.put("current_uuid", GenerationUuids.format(s.uuids().current()));
        ArrayNode history = root.putArray("history_uuids");
        s.uuids().history().forEach(h -> history.add(GenerationUuids.format(h)));
        ArrayNode peers = root.putArray("peers");
        for (int slot = 0; slot < s.peers().size(); slot++) {
            PeerSlot p = s.peers().get(slot);
            ObjectNode n = peers.addObject();
            n.put("slot", slot);
            if (p.assigned()) {
                n.put("node_id", p.nodeId());
            } else {
                n.putNull("node_id");
            }
            n.put("bitmap_uuid", GenerationUuids.format(s.uuids().bitmapUuid(slot)));
            ArrayNode pf = n.putArray("flags");
            p.flags().forEach(f -> pf.add(f.label()));
            n.put("out_of_sync_bits", md.bitmap().dirtyBits(slot));
            n.put("out_of_sync_bytes", md.bitmap().dirtyBytes(slot));
        }
        root.put("bitmap_flush_sequence", md.bitmap().flushSequence());
        ActivityLog.Recovery r = md.activityLog().recovery();
        ObjectNode al = root.putObject("activity_log");
        al.put("clean_shutdown", r.cleanShutdown());
        al.put("newest_transaction", r.newestTransaction());
        ArrayNode inLog = al.putArray("extents_in_log");
        r.extentsInLog().forEach(inLog::add);
        ArrayNode resync = al.putArray("extents_to_resync");
        r.hotExtents().forEach(resync::add);
        if (r.tornTail() != null) {
            al.put("torn_tail", r.tornTail());
        } else {
            al.putNull("torn_tail");
        }
        ArrayNode warnings = root.putArray("warnings");
        md.openReport().warnings().forEach(warnings::add);
        return root;
    }

    public static String json(Metadata md) {
        try {
            return JSON.writeValueAsString(tree(md));
        } catch (JsonProcessingException e) {
            throw new UncheckedIOException(e); // a tree of plain nodes always serializes
        }
    }

    public static String text(Metadata md) {
        MetadataGeometry g = md.geometry();
        PersistentState s = md.state();
        StringBuilder out = new StringBuilder();
        line(out, "resource %s, node %d: %s", g.resourceName(), g.nodeId(), md.describe());
        line(out, "  data          %s (%d bytes), last agreed %s", Sizes.format(g.dataSizeBytes()), g.dataSizeBytes(),
                Sizes.format(s.lastAgreedSizeBytes()));
        line(out, "  metadata      %s at offset %d, max-peers %d, al-extents %d x %s, ring %d blocks",
                Sizes.format(g.mdSizeBytes()), g.mdOffsetBytes(), g.maxPeers(), g.alExtents(),
                Sizes.format(g.alExtentSizeBytes()), g.alRingBlocks());
        line(out, "  superblock    transaction %d (copy %s; other copy: %s)", md.superblockTransaction(),
                md.openReport().superblockCopy(), md.openReport().otherCopy());
        line(out, "  disk          %s%s", s.diskState().drbdName(), s.flags().isEmpty() ? ""
                : ", flags " + s.flags().stream().map(VolumeFlag::label).collect(Collectors.joining(",")));
        line(out, "  current uuid  %s, data term %d", GenerationUuids.format(s.uuids().current()), s.dataTerm());
        line(out, "  history       %s", s.uuids().history().isEmpty() ? "-"
                : s.uuids().history().stream().map(GenerationUuids::format).collect(Collectors.joining(" ")));
        for (int slot = 0; slot < s.peers().size(); slot++) {
            PeerSlot p = s.peers().get(slot);
            if (!p.assigned() && s.uuids().bitmapUuid(slot) == 0 && md.bitmap().dirtyBits(slot) == 0) {
                continue;
            }
            line(out, "  peer slot %-2d  node %s, bitmap uuid %s, out of sync %s (%d bits)%s", slot,
                    p.assigned() ? Integer.toString(p.nodeId()) : "-", GenerationUuids.format(s.uuids().bitmapUuid(slot)),
                    Sizes.format(md.bitmap().dirtyBytes(slot)), md.bitmap().dirtyBits(slot), p.flags().isEmpty() ? ""
                            : ", flags " + p.flags().stream().map(PeerFlag::label).collect(Collectors.joining(",")));
        }
        ActivityLog.Recovery r = md.activityLog().recovery();
        line(out, "  activity log  newest transaction %d, %d extents in the log, %s", r.newestTransaction(),
                r.extentsInLog().size(), r.cleanShutdown() ? "clean shutdown: nothing to resync"
                        : "unclean shutdown: resync extents " + extents(r.hotExtents()));
        if (r.tornTail() != null) {
            line(out, "  torn tail     %s", r.tornTail());
        }
        List<String> warnings = md.openReport().warnings();
        for (String w : warnings) {
            line(out, "  warning       %s", w);
        }
        return out.toString();
    }

    private static String extents(SortedSet<Long> extents) {
        return extents.isEmpty() ? "none" : extents.stream().map(String::valueOf).collect(Collectors.joining(","));
    }

    private static void line(StringBuilder out, String format, Object... args) {
        out.append(String.format(format, args)).append('\n');
    }
}
