package io.replstor.replctl;

import picocli.CommandLine;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The jar's version, and the appliance release file when there is one. */
final class Version implements CommandLine.IVersionProvider {
    static final Path RELEASE = Path.of("/etc/replstor/release");

    @Override
    public String[] getVersion() throws IOException {
        String v = Version.class.getPackage().getImplementationVersion();
        String line = "replstor " + (v == null ? "dev" : v);
        if (Files.isReadable(RELEASE)) {
            return new String[] {line, Files.readString(RELEASE).strip()};
        }
        return new String[] {line};
    }
}
