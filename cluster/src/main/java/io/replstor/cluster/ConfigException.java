package io.replstor.cluster;

/** A configuration error; the message names the file, line and key and says what is allowed. */
public final class ConfigException extends Exception {
    private static final long serialVersionUID = 1L;

    public ConfigException(String message) {
        super(message);
    }
}
