package io.replstor.systemtest.support;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * Turns a {@link ServerSpec} into the command line of a server process. CI only ever uses {@link RepldLauncher};
 * {@link NbdkitLauncher} is a stand-in for checking the client invocations while our server is being written.
 */
public interface ServerLauncher {
    /** Chooses the launcher: {@code bin/repld}, unless {@code -D}{@value #PROPERTY}{@code =nbdkit}. */
    String PROPERTY = "replstor.systemtest.server";

    /** A short name for logs and file names. */
    String name();

    /**
     * Prepares whatever the server needs in {@code workDir} and returns its command line. The command must stay in
     * the foreground (its PID is the server's), log to stdout/stderr and listen on 127.0.0.1:{@code port}.
     */
    List<String> command(ServerSpec spec, int port, Path workDir) throws IOException;

    static ServerLauncher fromSystemProperties() {
        String choice = System.getProperty(PROPERTY, "repld").trim().toLowerCase(Locale.ROOT);
        switch (choice) {
            case "repld":
                return new RepldLauncher(ReplstorRoot.find());
            case "nbdkit":
                return new NbdkitLauncher();
            default:
                throw new IllegalArgumentException("-D" + PROPERTY + " must be repld or nbdkit, not '" + choice + "'");
        }
    }
}
