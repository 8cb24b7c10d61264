package io.replstor.nbd.server;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;

/** Counters of one export, for status and metrics. The data path counts; it does not log. */
public final class ServerStats {
    final LongAdder requests = new LongAdder();
    final LongAdder bytesRead = new LongAdder();
    final LongAdder bytesWritten = new LongAdder();
    final LongAdder errors = new LongAdder();
    final LongAdder protocolErrors = new LongAdder();
    final AtomicInteger connections = new AtomicInteger();

    public long requests() {
        return requests.sum();
    }

    public long bytesRead() {
        return bytesRead.sum();
    }

    public long bytesWritten() {
        return bytesWritten.sum();
    }

    public long errors() {
        return errors.sum();
    }

    public long protocolErrors() {
        return protocolErrors.sum();
    }

    public int connections() {
        return connections.get();
    }
}
