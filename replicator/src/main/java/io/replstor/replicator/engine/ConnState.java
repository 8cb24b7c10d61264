package io.replstor.replicator.engine;

/** DRBD's connection states, with DRBD's names. */
public enum ConnState {
    STANDALONE("StandAlone"),
    DISCONNECTING("Disconnecting"),
    UNCONNECTED("Unconnected"),
    TIMEOUT("Timeout"),
    BROKEN_PIPE("BrokenPipe"),
    NETWORK_FAILURE("NetworkFailure"),
    PROTOCOL_ERROR("ProtocolError"),
    CONNECTING("Connecting"),
    CONNECTED("Connected");

    private final String drbdName;

    ConnState(String drbdName) {
        this.drbdName = drbdName;
    }

    public String drbdName() {
        return drbdName;
    }
}
