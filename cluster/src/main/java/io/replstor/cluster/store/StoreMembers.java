package io.replstor.cluster.store;

import io.replstor.replicator.config.ClusterConfig;
import io.replstor.replicator.config.NodeConfig;
import io.replstor.replicator.config.ResourceConfig;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * What the cluster file says the store is made of: its members (every node, data or witness, in file
 * order) and, per resource, the data nodes that hold it. Every member must have the same file: the
 * initial in-sync sets come from it.
 */
record StoreMembers(String cluster, Map<String, NodeConfig> nodes, Map<String, Set<String>> holders) {

    StoreMembers {
        nodes = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(nodes));
        holders = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(holders));
    }

    static StoreMembers of(ClusterConfig config) {
        Map<String, NodeConfig> nodes = new LinkedHashMap<>();
        for (NodeConfig n : config.nodes()) {
            nodes.put(n.name(), n);
        }
        Map<String, Set<String>> holders = new LinkedHashMap<>();
        for (ResourceConfig r : config.resources()) {
            Set<String> on = new TreeSet<>();
            for (NodeConfig n : config.dataNodes()) {
                if (r.on(n.name()).isPresent()) {
                    on.add(n.name());
                }
            }
            holders.put(r.name(), Set.copyOf(on));
        }
        return new StoreMembers(config.name(), nodes, holders);
    }

    List<String> names() {
        return List.copyOf(nodes.keySet());
    }

    boolean isMember(String node) {
        return nodes.containsKey(node);
    }

    /** "alpha, beta, tie" in file order. */
    String describe() {
        return String.join(", ", nodes.keySet());
    }
}
