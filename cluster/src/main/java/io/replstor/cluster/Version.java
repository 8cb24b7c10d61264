package io.replstor.cluster;

import picocli.CommandLine;

/** The version baked into the jar manifest at build time ("dev" when run from classes). */
public final class Version implements CommandLine.IVersionProvider {
    public static String get() {
        String v = Version.class.getPackage().getImplementationVersion();
        return v == null ? "dev" : v;
    }

    @Override
    public String[] getVersion() {
        return new String[] {"replstor " + get()};
    }
}
