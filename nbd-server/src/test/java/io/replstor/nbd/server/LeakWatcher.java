package io.replstor.nbd.server;

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
 * {@link #assertNoLeaks()} collects garbage and allocates to make the detector look.
 */
final class LeakWatcher {
    private final ListAppender<ILoggingEvent> appender = new ListAppender<>();
    private final Logger logger = (Logger) LoggerFactory.getLogger(ResourceLeakDetector.class);

    LeakWatcher() {
        appender.start();
        logger.addAppender(appender);
    }

    void assertNoLeaks() throws InterruptedException {
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
            // one report is enough to act on; thousands of full reports (hundreds of MB) break
            // Surefire's reporting so badly that the build can end green
            String first = leaks.get(0);
            throw new AssertionError(leaks.size() + " buffer leak(s); the first:\n"
                    + (first.length() > 4000 ? first.substring(0, 4000) + " ..." : first));
        }
    }
}
