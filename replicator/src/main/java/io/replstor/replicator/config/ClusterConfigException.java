package io.replstor.replicator.config;

import java.util.List;

/**
 * The cluster configuration file is unreadable or invalid. {@link #problems()} holds one line per
 * problem, each {@code FILE:LINE: KEY: what is wrong and what is allowed}, in file order; the
 * message is those lines joined.
 */
public final class ClusterConfigException extends Exception {
    private static final long serialVersionUID = 1L;

    private final List<String> problems;

    public ClusterConfigException(List<String> problems) {
        super(String.join("\n", problems));
        this.problems = List.copyOf(problems);
    }

    public ClusterConfigException(String problem) {
        this(List.of(problem));
    }

    public List<String> problems() {
        return problems;
    }
}
