package io.replstor.replicator.config;

import java.time.Duration;

/**
 * A connection's timers, in DRBD's names and units (drbd.conf {@code net} section), with DRBD's
 * defaults and ranges.
 *
 * @param connectIntSeconds      {@code connect-int}: seconds between connection attempts
 * @param pingIntSeconds         {@code ping-int}: seconds of idleness before a keep-alive ping
 * @param pingTimeoutDeciseconds {@code ping-timeout}: tenths of a second to wait for a ping's answer
 * @param timeoutDeciseconds     {@code timeout}: tenths of a second to wait for any expected answer
 *                               before the peer counts as dead; shorter than connect-int and ping-int
 * @param koCount                {@code ko-count}: a peer that fails to complete a write within
 *                               {@code ko-count × timeout} is dropped; 0 = never
 */
public record NetTimers(int connectIntSeconds, int pingIntSeconds, int pingTimeoutDeciseconds,
                        int timeoutDeciseconds, int koCount) {

    public static final int CONNECT_INT_DEFAULT = 10;
    public static final int CONNECT_INT_MIN = 1;
    public static final int CONNECT_INT_MAX = 120;
    public static final int PING_INT_DEFAULT = 10;
    public static final int PING_INT_MIN = 1;
    public static final int PING_INT_MAX = 120;
    public static final int PING_TIMEOUT_DEFAULT = 5;
    public static final int PING_TIMEOUT_MIN = 1;
    public static final int PING_TIMEOUT_MAX = 300;
    public static final int TIMEOUT_DEFAULT = 60;
    public static final int TIMEOUT_MIN = 1;
    public static final int TIMEOUT_MAX = 600;
    public static final int KO_COUNT_DEFAULT = 7;
    public static final int KO_COUNT_MIN = 0;
    public static final int KO_COUNT_MAX = 200;

    /** DRBD's defaults: connect-int 10 s, ping-int 10 s, ping-timeout 0.5 s, timeout 6 s, ko-count 7. */
    public static final NetTimers DEFAULTS = new NetTimers(CONNECT_INT_DEFAULT, PING_INT_DEFAULT,
            PING_TIMEOUT_DEFAULT, TIMEOUT_DEFAULT, KO_COUNT_DEFAULT);

    public NetTimers {
        check("connect-int", connectIntSeconds, CONNECT_INT_MIN, CONNECT_INT_MAX);
        check("ping-int", pingIntSeconds, PING_INT_MIN, PING_INT_MAX);
        check("ping-timeout", pingTimeoutDeciseconds, PING_TIMEOUT_MIN, PING_TIMEOUT_MAX);
        check("timeout", timeoutDeciseconds, TIMEOUT_MIN, TIMEOUT_MAX);
        check("ko-count", koCount, KO_COUNT_MIN, KO_COUNT_MAX);
        if (timeoutDeciseconds >= connectIntSeconds * 10 || timeoutDeciseconds >= pingIntSeconds * 10) {
            throw new IllegalArgumentException("timeout (" + timeoutDeciseconds + " × 0.1 s) must be shorter than"
                    + " connect-int (" + connectIntSeconds + " s) and ping-int (" + pingIntSeconds + " s)");
        }
    }

    private static void check(String name, int value, int min, int max) {
        if (value < min || value > max) {
            throw new IllegalArgumentException(name + " " + value + " is out of range " + min + ".." + max);
        }
    }

    public Duration connectInterval() {
        return Duration.ofSeconds(connectIntSeconds);
    }

    public Duration pingInterval() {
        return Duration.ofSeconds(pingIntSeconds);
    }

    public Duration pingTimeout() {
        return Duration.ofMillis(pingTimeoutDeciseconds * 100L);
    }

    public Duration timeout() {
        return Duration.ofMillis(timeoutDeciseconds * 100L);
    }
}
