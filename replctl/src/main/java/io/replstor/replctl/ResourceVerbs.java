package io.replstor.replctl;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.regex.Pattern;

/**
 * The verbs that change a resource on one node: each POSTs its options as a JSON object to
 * {@code /resources/RES/VERB} of the node's admin API and prints the answer's {@code message}.
 */
final class ResourceVerbs {
    /** Resource and node names as the cluster file allows them (also safe in a URL path). */
    static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]*");
    private static final ObjectMapper JSON = new ObjectMapper();

    private ResourceVerbs() {
    }

    /** The common part: node selection, the resource, --json, sending and printing. */
    abstract static class Verb implements Callable<Integer> {
        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Mixin
        NodeOptions nodeOptions;

        @Parameters(index = "0", paramLabel = "RES", description = "the resource")
        String resource;

        @Option(names = "--json", description = "print the node's JSON answer as is")
        boolean json;

        /** The verb in the URL: the command's name ("primary", "invalidate-remote", ...). */
        final String verb() {
            return spec.name();
        }

        /** The request body; only options that were given. */
        void options(ObjectNode body) {
        }

        @Override
        public Integer call() throws Exception {
            checkName("resource", resource);
            ObjectNode body = JSON.createObjectNode();
            options(body);
            Path socket = nodeOptions.socket();
            AdminClient.Response r;
            try {
                r = AdminClient.post(socket, "/resources/" + resource + "/" + verb(), JSON.writeValueAsString(body),
                        AdminClient.VERB_TIMEOUT_MILLIS);
            } catch (AdminClient.AdminException e) {
                throw ReplctlException.unreachable(e.getMessage());
            }
            PrintWriter out = spec.commandLine().getOut();
            if (!r.ok()) {
                if (json) {
                    printBody(r, out);
                }
                throw ReplctlException.failed(r.errorMessage(socket));
            }
            printAnswer(r, socket, out);
            out.flush();
            return ExitCodes.OK;
        }

        /** After a successful verb: with --json the node's answer as is, else its {@code message}. */
        void printAnswer(AdminClient.Response r, Path socket, PrintWriter out) throws Exception {
            if (json) {
                printBody(r, out);
            } else {
                out.println(message(r.json()));
            }
        }

        /** The answer's {@code message}, or "RES: VERB done" if it has none. */
        String message(JsonNode answer) {
            return answer != null && answer.hasNonNull("message") ? answer.get("message").asText()
                    : resource + ": " + verb() + " done";
        }

        static void printBody(AdminClient.Response r, PrintWriter out) {
            out.print(r.body().endsWith("\n") ? r.body() : r.body() + "\n");
            out.flush();
        }

        /** A name for the URL or the body, checked before anything is sent. */
        void checkName(String what, String value) {
            if (value != null && !NAME.matcher(value).matches()) {
                throw new CommandLine.ParameterException(spec.commandLine(), "'" + value + "' is not a valid " + what
                        + " name (letters, digits, '.', '_' and '-', starting with a letter or digit)");
            }
        }
    }

    /** Adds {@code --peer P}. */
    abstract static class PeerVerb extends Verb {
        @Option(names = "--peer", paramLabel = "P", description = "only the connection to this peer (default: all)")
        String peer;

        @Override
        void options(ObjectNode body) {
            checkName("peer", peer);
            if (peer != null) {
                body.put("peer", peer);
            }
        }
    }

    @Command(name = "up", mixinStandardHelpOptions = true,
            description = "Attach the resource's disk (open its metadata) and start connecting to the peers.")
    static final class Up extends Verb {
    }

    @Command(name = "down", mixinStandardHelpOptions = true,
            description = "Disconnect, detach and close the metadata; the NBD export refuses clients.")
    static final class Down extends Verb {
    }

    @Command(name = "primary", mixinStandardHelpOptions = true,
            description = "Promote the resource on the node (refused unless its disk is UpToDate).")
    static final class Primary extends Verb {
        @Option(names = "--force", description = {"promote a Consistent, Outdated or Inconsistent disk too, or a node"
                + " outside the in-sync set (it becomes the only in-sync replica; the cluster store records it)",
                "Without quorum: a lone survivor's override, not recorded; split brain is then possible."})
        boolean force;

        @Option(names = "--reason", paramLabel = "TEXT",
                description = "why (recorded with the promotion in the cluster store: replctl cluster status)")
        String reason;

        @Override
        void options(ObjectNode body) {
            if (force) {
                body.put("force", true);
            }
            if (reason != null) {
                body.put("reason", reason);
            }
        }
    }

    @Command(name = "secondary", mixinStandardHelpOptions = true,
            description = "Demote the resource (refused while NBD clients are connected).")
    static final class Secondary extends Verb {
    }

    @Command(name = "connect", mixinStandardHelpOptions = true, description = "Leave StandAlone and connect.")
    static final class Connect extends PeerVerb {
        @Option(names = "--discard-my-data",
                description = "after a split brain, become the sync target and discard this node's changes")
        boolean discardMyData;

        @Override
        void options(ObjectNode body) {
            if (discardMyData) {
                body.put("discard_my_data", true);
            }
            super.options(body);
        }
    }

    @Command(name = "disconnect", mixinStandardHelpOptions = true, description = "Go StandAlone.")
    static final class Disconnect extends PeerVerb {
    }

    @Command(name = "invalidate", mixinStandardHelpOptions = true,
            description = "Discard the local data: full resync from a peer (Connected, not Primary).")
    static final class Invalidate extends Verb {
    }

    @Command(name = "invalidate-remote", mixinStandardHelpOptions = true,
            description = "Make the peer resync fully from this node.")
    static final class InvalidateRemote extends PeerVerb {
    }

    @Command(name = "pause-sync", mixinStandardHelpOptions = true, description = "Pause a running resync.")
    static final class PauseSync extends PeerVerb {
    }

    @Command(name = "resume-sync", mixinStandardHelpOptions = true, description = "Resume a paused resync.")
    static final class ResumeSync extends PeerVerb {
    }

    @Command(name = "new-current-uuid", mixinStandardHelpOptions = true,
            description = "Rotate the current UUID (start a new data generation).")
    static final class NewCurrentUuid extends Verb {
        @Option(names = "--clear-bitmap", description = "on connected, Inconsistent, never-synced peers: skip the"
                + " initial sync and make both UpToDate")
        boolean clearBitmap;

        @Override
        void options(ObjectNode body) {
            if (clearBitmap) {
                body.put("clear_bitmap", true);
            }
        }
    }
}
