package io.replstor.replctl;

import com.fasterxml.jackson.databind.JsonNode;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code replctl cluster ...}: the cluster store as one node sees it. */
@Command(name = "cluster", mixinStandardHelpOptions = true, description = "The cluster store: members, terms, quorum.",
        subcommands = {ClusterCommand.Status.class})
final class ClusterCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        throw new CommandLine.ParameterException(spec.commandLine(), "give a subcommand: status");
    }

    /**
     * {@code replctl cluster status [--json]}: the members (data or witness, reachable, the Raft leader),
     * per resource its term, Primaries and in-sync set, and whether the asked node has quorum. The node
     * answers with a linearizable read while it has quorum ({@code "stale": false}), else with its own
     * last view ({@code "stale": true}).
     */
    @Command(name = "status", mixinStandardHelpOptions = true,
            description = "Show the cluster store: members, leader, quorum, and per resource its term, Primaries"
                    + " and in-sync set.")
    static final class Status implements Callable<Integer> {
        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Mixin
        NodeOptions nodeOptions;

        @Option(names = "--json", description = "print the node's JSON answer (schema: cluster/README.md)")
        boolean json;

        @Override
        public Integer call() throws Exception {
            PrintWriter out = spec.commandLine().getOut();
            AdminClient.Response r = AdminClient.getObject(nodeOptions.socket(), "/cluster");
            JsonNode s = r.json();
            out.print(json ? (r.body().endsWith("\n") ? r.body() : r.body() + "\n") : format(s));
            out.flush();
            return ExitCodes.OK;
        }

        /**
         * <pre>
         * cluster demo: quorum:yes leader:beta
         *   alpha data reachable
         *   beta data reachable leader
         *   tie witness unreachable last-seen:12.3s
         * r0 term:5 primaries:alpha in-sync:alpha,beta
         *   last-change:term 5: alpha promoted (auto-promote for NBD client 127.0.0.1:4711)
         * </pre>
         */
        static String format(JsonNode s) {
            StringBuilder b = new StringBuilder();
            JsonNode q = s.path("quorum");
            b.append("cluster ").append(s.path("cluster").asText("?")).append(": quorum:")
                    .append(q.path("present").asBoolean() ? "yes" : "no");
            String leader = s.hasNonNull("leader") ? s.get("leader").asText() : null;
            if (leader != null) {
                b.append(" leader:").append(leader);
            }
            if (s.path("stale").asBoolean(false)) {
                b.append(" (this node's last view: no quorum)");
            }
            b.append('\n');
            if (!q.path("present").asBoolean() || s.path("stale").asBoolean(false)) {
                b.append("  why:").append(q.path("why").asText()).append('\n');
            }
            for (JsonNode m : s.path("members")) {
                String name = m.path("name").asText();
                b.append("  ").append(name).append(' ').append(m.path("role").asText("data")).append(' ')
                        .append(m.path("reachable").asBoolean() ? "reachable" : "unreachable");
                if (name.equals(leader)) {
                    b.append(" leader");
                }
                if (m.path("this_node").asBoolean(false)) {
                    b.append(" (this node)");
                }
                if (!m.path("reachable").asBoolean() && m.hasNonNull("last_seen_ms")) {
                    b.append(String.format(java.util.Locale.ROOT, " last-seen:%.1fs ago",
                            m.get("last_seen_ms").asLong() / 1000.0));
                }
                b.append('\n');
            }
            for (JsonNode r : s.path("resources")) {
                b.append(r.path("name").asText()).append(" term:").append(r.path("term").asLong())
                        .append(" primaries:").append(names(r.path("primaries")))
                        .append(" in-sync:").append(names(r.path("in_sync"))).append('\n');
                if (!r.path("last_change").asText("").isEmpty()) {
                    b.append("  last-change:").append(r.path("last_change").asText()).append('\n');
                }
                if (r.hasNonNull("forced")) {
                    JsonNode f = r.get("forced");
                    b.append("  forced:").append(f.path("node").asText()).append(" in term ")
                            .append(f.path("term").asLong()).append(": ").append(f.path("reason").asText()).append('\n');
                }
            }
            return b.toString();
        }

        private static String names(JsonNode arr) {
            List<String> n = new ArrayList<>();
            arr.forEach(x -> n.add(x.asText()));
            return n.isEmpty() ? "-" : String.join(",", n);
        }
    }
}
