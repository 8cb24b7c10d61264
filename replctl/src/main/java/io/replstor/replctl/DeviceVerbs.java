package io.replstor.replctl;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.regex.Pattern;

/**
 * {@code attach} and {@code detach}: the node connects the kernel NBD client to its own export of
 * the resource, so it appears as {@code /dev/nbdN} (the node does the work: see the admin API).
 */
final class DeviceVerbs {
    static final Pattern DEVICE = Pattern.compile("/dev/nbd\\d+");
    private static final ObjectMapper JSON = new ObjectMapper();

    private DeviceVerbs() {
    }

    @Command(name = "attach", mixinStandardHelpOptions = true,
            description = {"Attach the resource to a kernel NBD device on the node (/dev/nbdN) and print the device.",
                "The device is an ordinary client of the node's export: with auto-promote it promotes the node; a node"
                        + " that cannot serve refuses and says where the Primary is."})
    static final class Attach extends ResourceVerbs.Verb {
        @Option(names = "--device", paramLabel = "DEV", description = "this device (default: the first free /dev/nbdN)")
        String device;

        @Override
        void options(ObjectNode body) {
            if (device != null) {
                if (!DEVICE.matcher(device).matches()) {
                    throw new CommandLine.ParameterException(spec.commandLine(), "'" + device
                            + "' is not an NBD device (expected /dev/nbdN)");
                }
                body.put("device", device);
            }
        }

        /** Prints the device the node recorded (its status), or with --json adds it to the answer. */
        @Override
        void printAnswer(AdminClient.Response r, Path socket, PrintWriter out) throws Exception {
            JsonNode answer = r.json();
            String dev = recordedDevice(socket);
            if (json) {
                ObjectNode o = answer != null && answer.isObject() ? (ObjectNode) answer : JSON.createObjectNode();
                o.put("device", dev);
                out.println(JSON.writeValueAsString(o));
            } else {
                out.println(dev != null ? dev : message(answer));
            }
        }

        /** The resource's {@code device} in the node's status, or null if it cannot be read. */
        private String recordedDevice(Path socket) {
            try {
                AdminClient.Response s = AdminClient.get(socket, "/status", AdminClient.STATUS_TIMEOUT_MILLIS);
                JsonNode status = s.ok() ? s.json() : null;
                if (status != null) {
                    for (JsonNode res : status.path("resources")) {
                        if (resource.equals(res.path("name").asText()) && res.hasNonNull("device")) {
                            return res.get("device").asText();
                        }
                    }
                }
            } catch (AdminClient.AdminException e) {
                // the attach itself succeeded; print its message instead
            }
            return null;
        }
    }

    @Command(name = "detach", mixinStandardHelpOptions = true,
            description = {"Disconnect the resource's kernel NBD device on the node (refused while it is mounted or"
                    + " otherwise in use).", "The last client leaving demotes an auto-promoted node."})
    static final class Detach extends ResourceVerbs.Verb {
    }
}
