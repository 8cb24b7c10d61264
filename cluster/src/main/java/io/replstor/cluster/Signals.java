package io.replstor.cluster;

import sun.misc.Signal;

/**
 * SIGTERM and SIGINT start an orderly stop that ends with exit status 0, as systemd and scripts
 * expect of a clean shutdown (the JVM's default would exit 143/130 from inside a shutdown hook).
 */
final class Signals {
    private Signals() {
    }

    static void onTerminate(Runnable action) {
        Signal.handle(new Signal("TERM"), s -> action.run());
        Signal.handle(new Signal("INT"), s -> action.run());
    }
}
