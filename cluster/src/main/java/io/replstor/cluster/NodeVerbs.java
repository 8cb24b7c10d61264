package io.replstor.cluster;

import io.replstor.replicator.engine.EngineException;
import io.replstor.replicator.engine.ReplicationNode;
import io.replstor.replicator.engine.Resource;

import java.util.Map;
import java.util.Set;

/** The admin API's {@code POST /resources/{name}/{verb}}: DRBD's verbs on one resource. */
final class NodeVerbs {
    private NodeVerbs() {
    }

    static String run(ReplicationNode node, String resource, String verb, Map<String, Object> opts)
            throws EngineException {
        Resource r = node.resource(resource);
        return switch (verb) {
            case "up" -> {
                only(verb, opts);
                yield r.up();
            }
            case "down" -> {
                only(verb, opts);
                yield r.down(false);
            }
            case "primary" -> {
                only(verb, opts, "force", "reason");
                yield r.primary(flag(opts, "force"), text(opts, "reason"));
            }
            case "secondary" -> {
                only(verb, opts);
                yield r.secondary();
            }
            case "connect" -> {
                only(verb, opts, "discard_my_data", "peer");
                yield r.connect(peer(opts), flag(opts, "discard_my_data"));
            }
            case "disconnect" -> {
                only(verb, opts, "peer");
                yield r.disconnect(peer(opts));
            }
            case "invalidate" -> {
                only(verb, opts);
                yield r.invalidate();
            }
            case "invalidate-remote" -> {
                only(verb, opts, "peer");
                yield r.invalidateRemote(peer(opts));
            }
            case "pause-sync", "resume-sync" -> {
                only(verb, opts, "peer");
                yield r.pauseSync(peer(opts), verb.equals("pause-sync"));
            }
            case "new-current-uuid" -> {
                only(verb, opts, "clear_bitmap");
                yield r.newCurrentUuid(flag(opts, "clear_bitmap"));
            }
            case "attach" -> {
                only(verb, opts, "device");
                yield NbdAttach.system().attach(node, r, device(opts));
            }
            case "detach" -> {
                only(verb, opts);
                yield NbdAttach.system().detach(node, r);
            }
            default -> throw new EngineException(EngineException.Code.NOT_FOUND, "unknown verb '" + verb
                    + "' (up, down, primary, secondary, connect, disconnect, invalidate, invalidate-remote, pause-sync, "
                    + "resume-sync, new-current-uuid, attach, detach)");
        };
    }

    private static void only(String verb, Map<String, Object> opts, String... allowed) throws EngineException {
        Set<String> ok = Set.of(allowed);
        for (String k : opts.keySet()) {
            if (!ok.contains(k)) {
                throw new EngineException(EngineException.Code.BAD_REQUEST, verb + ": unknown option '" + k + "'"
                        + (ok.isEmpty() ? " (it takes none)" : " (allowed: " + String.join(", ", ok) + ")"));
            }
        }
    }

    private static boolean flag(Map<String, Object> opts, String key) throws EngineException {
        Object v = opts.get(key);
        if (v == null) {
            return false;
        }
        if (v instanceof Boolean b) {
            return b;
        }
        throw new EngineException(EngineException.Code.BAD_REQUEST, "option '" + key + "' must be true or false, not " + v);
    }

    private static String text(Map<String, Object> opts, String key) throws EngineException {
        Object v = opts.get(key);
        if (v == null) {
            return null;
        }
        if (v instanceof String s && !s.isBlank() && s.length() <= 512) {
            return s;
        }
        throw new EngineException(EngineException.Code.BAD_REQUEST, "option '" + key + "' must be a text of 1 to 512"
                + " characters");
    }

    private static String device(Map<String, Object> opts) throws EngineException {
        Object v = opts.get("device");
        if (v == null) {
            return null;
        }
        if (v instanceof String s && NbdAttach.DEVICE.matcher(s).matches()) {
            return s;
        }
        throw new EngineException(EngineException.Code.BAD_REQUEST, "option 'device' must be /dev/nbdN, not " + v);
    }

    private static String peer(Map<String, Object> opts) throws EngineException {
        Object v = opts.get("peer");
        if (v == null) {
            return null;
        }
        if (v instanceof String s && !s.isEmpty()) {
            return s;
        }
        throw new EngineException(EngineException.Code.BAD_REQUEST, "option 'peer' must be a node name, not " + v);
    }
}
