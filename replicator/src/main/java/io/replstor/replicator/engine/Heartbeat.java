package io.replstor.replicator.engine;

import io.netty.util.concurrent.ScheduledFuture;
import io.replstor.replicator.config.NetTimers;

import java.util.concurrent.TimeUnit;

/**
 * A session's liveness, on the meta channel's event loop (DRBD's timers): a PING after
 * {@code ping-int} of silence on the meta channel, or after {@code timeout}/2 while writes wait for
 * the peer (a peer that answers pings is alive, only slow: ko-count's case); the session fails when
 * a PING is not answered within {@code ping-timeout}, when nothing arrived for {@code timeout} while
 * a write waited, or when a write waited longer than {@code ko-count} x {@code timeout}.
 */
final class Heartbeat {
    private static final long TICK_MS = 100;

    private final Session s;
    private volatile long lastMetaNanos = System.nanoTime();
    private volatile long pingSentNanos;
    private ScheduledFuture<?> ticks;

    Heartbeat(Session s) {
        this.s = s;
    }

    void start() {
        ticks = s.meta.eventLoop().scheduleAtFixedRate(this::tick, TICK_MS, TICK_MS, TimeUnit.MILLISECONDS);
    }

    void stop() {
        if (ticks != null) {
            ticks.cancel(false);
        }
    }

    /** Anything arrived on the meta channel. */
    void heard() {
        lastMetaNanos = System.nanoTime();
    }

    void pingAnswered() {
        pingSentNanos = 0;
    }

    private void tick() {
        if (s.failed()) {
            return;
        }
        NetTimers t = s.res.cfg.timers();
        String peer = s.link.name();
        long now = System.nanoTime();
        long idle = now - lastMetaNanos;
        if (pingSentNanos != 0 && now - pingSentNanos > t.pingTimeout().toNanos()) {
            s.fail(ConnState.TIMEOUT, peer + " did not answer a ping within ping-timeout ("
                    + t.pingTimeout().toMillis() + " ms)");
            return;
        }
        long oldest = s.transfer.oldestUnackedNanos();
        long probeAfter = oldest == Long.MAX_VALUE ? t.pingInterval().toNanos()
                : Math.min(t.pingInterval().toNanos(), t.timeout().toNanos() / 2);
        if (pingSentNanos == 0 && idle > probeAfter) {
            pingSentNanos = now;
            s.sendMeta(PeerLink.ENCODER.get().ping(s.meta.alloc()));
        }
        if (oldest == Long.MAX_VALUE) {
            return;
        }
        long age = now - oldest;
        long timeout = t.timeout().toNanos();
        if (age > timeout && idle > timeout) {
            s.fail(ConnState.TIMEOUT, peer + " sent nothing for " + TimeUnit.NANOSECONDS.toMillis(idle)
                    + " ms while writes waited for it (timeout " + t.timeout().toMillis() + " ms)");
        } else if (t.koCount() > 0 && age > timeout * t.koCount()) {
            s.fail(ConnState.TIMEOUT, peer + " did not complete a write within ko-count x timeout ("
                    + t.koCount() + " x " + t.timeout().toMillis() + " ms); dropping the peer");
        }
    }
}
