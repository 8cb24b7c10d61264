package io.replstor.cluster.store;

import com.fasterxml.jackson.annotation.JsonSubTypes;
import com.fasterxml.jackson.annotation.JsonTypeInfo;

import java.util.Map;
import java.util.Objects;

/**
 * A change to the cluster store's replicated state: one Raft log entry, JSON with an {@code op} field
 * ({@code {"op":"renew","node":"alpha","seq":17}}). {@link StoreState#apply} is the only place that
 * gives them meaning, and it depends on nothing but the state and the command, so every member
 * applies them alike.
 */
@JsonTypeInfo(use = JsonTypeInfo.Id.NAME, property = "op")
@JsonSubTypes({
        @JsonSubTypes.Type(value = StoreCommand.Promote.class, name = "promote"),
        @JsonSubTypes.Type(value = StoreCommand.Demote.class, name = "demote"),
        @JsonSubTypes.Type(value = StoreCommand.RemoveInSync.class, name = "remove-in-sync"),
        @JsonSubTypes.Type(value = StoreCommand.AddInSync.class, name = "add-in-sync"),
        @JsonSubTypes.Type(value = StoreCommand.Renew.class, name = "renew")})
sealed interface StoreCommand {

    /**
     * Make {@code node} the Primary of {@code resource}.
     *
     * @param deposed the current Primaries this promotion replaces, each with the lease sequence number
     *                the leader saw expire; filled in by the leader only ({@link RoleStateMachine#startTransaction}),
     *                whatever the client sent
     */
    record Promote(String resource, String node, boolean force, String reason, Map<String, Long> deposed)
            implements StoreCommand {
        public Promote {
            Objects.requireNonNull(resource, "resource");
            Objects.requireNonNull(node, "node");
            reason = reason == null ? "" : reason;
            deposed = deposed == null ? Map.of() : Map.copyOf(deposed);
        }

        Promote withDeposed(Map<String, Long> leaseSeqs) {
            return new Promote(resource, node, force, reason, leaseSeqs);
        }
    }

    record Demote(String resource, String node, String reason) implements StoreCommand {
        public Demote {
            Objects.requireNonNull(resource, "resource");
            Objects.requireNonNull(node, "node");
            reason = reason == null ? "" : reason;
        }
    }

    /** The Primary {@code primary} of {@code term} drops {@code peer}, which did not confirm writes. */
    record RemoveInSync(String resource, String primary, long term, String peer, String why) implements StoreCommand {
        public RemoveInSync {
            Objects.requireNonNull(resource, "resource");
            Objects.requireNonNull(primary, "primary");
            Objects.requireNonNull(peer, "peer");
            why = why == null ? "" : why;
        }
    }

    /** The Primary {@code primary} of {@code term} adds {@code peer}, which holds every acknowledged write again. */
    record AddInSync(String resource, String primary, long term, String peer) implements StoreCommand {
        public AddInSync {
            Objects.requireNonNull(resource, "resource");
            Objects.requireNonNull(primary, "primary");
            Objects.requireNonNull(peer, "peer");
        }
    }

    /**
     * {@code node} is alive: its lease is extended from the moment it sent this. {@code seq} differs from
     * every earlier renewal of the node (also across restarts), so a promotion that deposes it can name
     * the renewal it saw expire.
     */
    record Renew(String node, long seq) implements StoreCommand {
        public Renew {
            Objects.requireNonNull(node, "node");
        }
    }
}
