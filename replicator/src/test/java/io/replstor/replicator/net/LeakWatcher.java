package io.replstor.replicator.net;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.util.ResourceLeakDetector;
import org.slf4j.LoggerFactory;

import java.util.List;
import java.util.stream.Collectors;

/**
 * Turns Netty's leak reports into test failures. Tests run with leak detection at paranoid (every
 * buffer tracked); a leaked buffer is reported when the garbage collector finds it, so
 * {@link #assertNoLeaks()} collects garbage and allocates to make the detector look. (A copy of
 * nbd-server's test class, with the failure message bounded; public for the engine's tests.)
 */
public final class LeakWatcher {
    private static final int MAX_REPORT_CHARS = 4000;
    private final ListAppender<ILoggingEvent> appender = new ListAppender<>();
    private final Logger logger = (Logger) LoggerFactory.getLogger(ResourceLeakDetector.class);

    public LeakWatcher() {
        appender.start();
        logger.addAppender(appender);
    }

    public void assertNoLeaks() throws InterruptedException {
        if (ResourceLeakDetector.getLevel() != ResourceLeakDetector.Level.PARANOID) {
            throw new AssertionError("tests must run with -Dio.netty.leakDetection.level=paranoid");
        }
        for (int i = 0; i < 5; i++) {
            System.gc();
            Thread.sleep(50);
            for (int j = 0; j < 100; j++) {
                ByteBuf b = PooledByteBufAllocator.DEFAULT.directBuffer(64);
                b.release();
            }
        }
        logger.detachAppender(appender);
        List<String> leaks = appender.list.stream().map(ILoggingEvent::getFormattedMessage)
                .filter(m -> m.contains("LEAK")).collect(Collectors.toList());
        if (!leaks.isEmpty()) {
            // only the first report, cut short: thousands of full reports make a message so large that
            // surefire's reporting breaks and the build passes (seen: 1966 leaks, 400 MB of output)
            String first = leaks.get(0);
            throw new AssertionError(leaks.size() + " buffer leak(s); the first:\n"
                    + first.substring(0, Math.min(first.length(), MAX_REPORT_CHARS)));
        }
    }
}
