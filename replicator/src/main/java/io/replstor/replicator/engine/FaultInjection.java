package io.replstor.replicator.engine;

import io.replstor.replicator.config.NodeConfig;

import java.net.InetSocketAddress;
import java.util.HashMap;
import java.util.Map;

/**
 * Faults for tests, from the environment variable {@code REPLSTOR_FAULTS} (comma-separated
 * {@code key=value}); empty in production. Known keys:
 * <ul>
 *   <li>{@code apply-delay-ms}: this node waits that long before applying each replicated write
 *       (a slow peer disk: protocol C acks wait for it, A and B do not)</li>
 *   <li>{@code recv-delay-ms}, {@code recv-delay-us}: every frame this node receives from a peer is handed
 *       on that much later, in order (a slow link towards this node: B and C acks wait for it, A does not;
 *       give it to both nodes for a symmetric link delay where the kernel has no netem)</li>
 *   <li>{@code handshake-delay-ms}: this node waits that long before it answers a peer's handshake
 *       (a slow joiner: its peers must not stall their writes meanwhile)</li>
 * </ul>
 */
public final class FaultInjection {
    public static final FaultInjection NONE = new FaultInjection(Map.of());

    private static final java.util.Set<String> KEYS = java.util.Set.of("apply-delay-ms", "recv-delay-ms",
            "recv-delay-us", "handshake-delay-ms");
    private final long applyDelayMs;
    private final long recvDelayNanos;
    private final long handshakeDelayMs;

    private FaultInjection(Map<String, String> m) {
        this.applyDelayMs = Long.parseLong(m.getOrDefault("apply-delay-ms", "0"));
        this.handshakeDelayMs = Long.parseLong(m.getOrDefault("handshake-delay-ms", "0"));
        this.recvDelayNanos = Long.parseLong(m.getOrDefault("recv-delay-ms", "0")) * 1_000_000L
                + Long.parseLong(m.getOrDefault("recv-delay-us", "0")) * 1_000L;
    }

    /** Parses {@code spec}; unknown keys are an error, so a typo in a test cannot pass silently. */
    public static FaultInjection parse(String spec) {
        if (spec == null || spec.isBlank()) {
            return NONE;
        }
        Map<String, String> m = new HashMap<>();
        for (String part : spec.split(",")) {
            String[] kv = part.trim().split("=", 2);
            if (kv.length != 2 || !KEYS.contains(kv[0])) {
                throw new IllegalArgumentException("REPLSTOR_FAULTS: unknown fault '" + part.trim()
                        + "' (known: apply-delay-ms=N, recv-delay-ms=N, recv-delay-us=N, handshake-delay-ms=N)");
            }
            try {
                if (Long.parseLong(kv[1]) < 0) {
                    throw new NumberFormatException();
                }
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("REPLSTOR_FAULTS: '" + part.trim() + "': expected a number of ms");
            }
            m.put(kv[0], kv[1]);
        }
        return new FaultInjection(m);
    }

    public boolean active() {
        return applyDelayMs > 0 || recvDelayNanos > 0 || handshakeDelayMs > 0;
    }

    @Override
    public String toString() {
        return "apply-delay-ms=" + applyDelayMs + ", recv-delay-us=" + recvDelayNanos / 1000 + ", handshake-delay-ms="
                + handshakeDelayMs;
    }

    /** A handler delaying inbound frames, or null. */
    io.netty.channel.ChannelHandler receiveDelay() {
        if (recvDelayNanos <= 0) {
            return null;
        }
        return new io.netty.channel.ChannelInboundHandlerAdapter() {
            @Override
            public void channelRead(io.netty.channel.ChannelHandlerContext ctx, Object msg) {
                // same delay for every frame: the event loop's scheduled queue keeps their order
                ctx.executor().schedule(() -> ctx.fireChannelRead(msg), recvDelayNanos,
                        java.util.concurrent.TimeUnit.NANOSECONDS);
            }
        };
    }

    void beforeApply() throws InterruptedException {
        if (applyDelayMs > 0) {
            Thread.sleep(applyDelayMs);
        }
    }

    InetSocketAddress dialAddress(NodeConfig peer) {
        return peer.address().toSocketAddress();
    }

    /** How long this node's side of a handshake starts late: a slow joiner (its worker is not held meanwhile). */
    long handshakeDelayMs() {
        return handshakeDelayMs;
    }
}
