package io.replstor.cluster;

import io.replstor.nbd.server.TlsPolicy;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(10)
class ServeConfigTest {
    @TempDir
    Path dir;

    private Path write(String toml) throws IOException {
        Path f = dir.resolve("replstor.toml");
        Files.writeString(f, toml);
        return f;
    }

    @Test
    void readsNbdSettingsAndExports() throws Exception {
        ServeConfig c = ServeConfig.load(write("""
                [nbd]
                listen = "0.0.0.0:10809"
                tls = "allow"
                io-threads = 4
                max-payload = "8MiB"

                [[export]]
                name = "demo"
                path = "/var/lib/replstor/demo.img"
                size = "1GiB"
                description = "demo volume"
                allow = ["127.0.0.0/8", "::1"]

                [[export]]
                name = "iso"
                path = "/srv/install.iso"
                readonly = true
                """));
        assertEquals("0.0.0.0:10809", c.listen());
        assertEquals(TlsPolicy.ALLOW, c.tls());
        assertEquals(4, c.ioThreads());
        assertEquals(8L << 20, c.maxPayload());
        assertEquals(2, c.exports().size());
        ExportSpec demo = c.exports().get(0);
        assertEquals(1L << 30, demo.sizeBytes());
        assertEquals(2, demo.allow().size());
        assertTrue(c.exports().get(1).readOnly());
    }

    @Test
    void syntaxErrorsNameFileAndLine() throws IOException {
        Path f = write("[nbd]\nlisten = \n");
        ConfigException e = assertThrows(ConfigException.class, () -> ServeConfig.load(f));
        assertTrue(e.getMessage().startsWith(f + ":2:"), e.getMessage());
    }

    @Test
    void unknownKeysAreRejectedWithTheAllowedOnes() throws IOException {
        Path f = write("[nbd]\nlisten = \"127.0.0.1:1\"\nlsten = 3\n");
        ConfigException e = assertThrows(ConfigException.class, () -> ServeConfig.load(f));
        assertTrue(e.getMessage().contains(f + ":3: nbd.lsten: unknown key (allowed: io-threads, listen"),
                e.getMessage());
    }

    @Test
    void badValuesNameTheKeyAndSayWhatIsAllowed() throws IOException {
        Path f = write("[[export]]\nname = \"a\"\npath = \"/x\"\nsize = \"12 parsecs\"\n");
        ConfigException e = assertThrows(ConfigException.class, () -> ServeConfig.load(f));
        assertTrue(e.getMessage().contains(":4: export[0].size: not a size: '12 parsecs'"), e.getMessage());

        Path g = write("[nbd]\ntls = \"maybe\"\n");
        e = assertThrows(ConfigException.class, () -> ServeConfig.load(g));
        assertTrue(e.getMessage().contains(":2: nbd.tls: tls must be off, allow or require"), e.getMessage());

        Path h = write("[[export]]\nname = \"a\"\npath = \"/x\"\nallow = [\"10.0.0.0/33\"]\n");
        e = assertThrows(ConfigException.class, () -> ServeConfig.load(h));
        assertTrue(e.getMessage().contains("export[0].allow: prefix length out of range"), e.getMessage());
    }

    @Test
    void missingPathIsReported() throws IOException {
        Path f = write("[[export]]\nname = \"a\"\n");
        ConfigException e = assertThrows(ConfigException.class, () -> ServeConfig.load(f));
        assertTrue(e.getMessage().contains("export[0].path is missing"), e.getMessage());
    }

    @Test
    void exportSpecsFromTheCommandLine() {
        ExportSpec s = ExportSpec.parse("disk=/tmp/disk.img,size=1GiB,readonly,description=test disk,allow=10.0.0.0/8;::1");
        assertEquals("disk", s.name());
        assertEquals(Path.of("/tmp/disk.img"), s.path());
        assertEquals(1L << 30, s.sizeBytes());
        assertTrue(s.readOnly());
        assertEquals("test disk", s.description());
        assertEquals(2, s.allow().size());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ExportSpec.parse("disk=/tmp/x,sise=1G"));
        assertTrue(e.getMessage().contains("unknown option 'sise'"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> ExportSpec.parse("/tmp/x"));
    }
}
