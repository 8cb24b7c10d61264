package io.replstor.nbd.client;

import static org.junit.jupiter.api.Assertions.fail;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.AppenderBase;
import io.netty.buffer.ByteBufAllocator;
import io.netty.util.ResourceLeakDetector;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.slf4j.LoggerFactory;

/**
 * Fails a test if Netty's leak detector reports a ByteBuf leak while it runs. The detector logs "LEAK:" at
 * ERROR when a tracked buffer is garbage collected unreleased, noticed on a later allocation; so after each
 * test we collect garbage and allocate a few buffers to make it report.
 */
final class LeakCheck implements BeforeEachCallback, AfterEachCallback {
    private static final List<String> LEAKS = new CopyOnWriteArrayList<>();
    private static final AppenderBase<ILoggingEvent> APPENDER = new AppenderBase<>() {
        @Override
        protected void append(ILoggingEvent event) {
            if (event.getLevel().isGreaterOrEqual(Level.ERROR) && event.getFormattedMessage().contains("LEAK")) {
                LEAKS.add(event.getFormattedMessage());
            }
        }
    };

    static {
        Logger logger = (Logger) LoggerFactory.getLogger(ResourceLeakDetector.class);
        APPENDER.setContext(logger.getLoggerContext());
        APPENDER.start();
        logger.addAppender(APPENDER);
    }

    @Override
    public void beforeEach(ExtensionContext context) {
        provokeReports();
        LEAKS.clear();
    }

    @Override
    public void afterEach(ExtensionContext context) {
        provokeReports();
        if (!LEAKS.isEmpty()) {
            List<String> leaks = List.copyOf(LEAKS);
            LEAKS.clear();
            fail(leaks.size() + " ByteBuf leak(s) reported during " + context.getDisplayName() + ":\n"
                    + String.join("\n\n", leaks));
        }
    }

    private static void provokeReports() {
        for (int i = 0; i < 3; i++) {
            System.gc();
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
            ByteBufAllocator.DEFAULT.directBuffer(1).release();
            ByteBufAllocator.DEFAULT.heapBuffer(1).release();
        }
    }
}
