package io.replstor.nbd.server;

/** Whether clients may or must upgrade with NBD_OPT_STARTTLS. */
public enum TlsPolicy {
    /** STARTTLS is refused with ERR_POLICY. */
    OFF,
    /** Plain and TLS clients are both served. */
    ALLOW,
    /** Only LIST/INFO/GO after STARTTLS; plain clients get ERR_TLS_REQD. */
    REQUIRE;

    public static TlsPolicy parse(String text) {
        return switch (text.trim().toLowerCase(java.util.Locale.ROOT)) {
            case "off", "no", "false" -> OFF;
            case "allow", "on" -> ALLOW;
            case "require", "required" -> REQUIRE;
            default -> throw new IllegalArgumentException("tls must be off, allow or require, not '" + text + "'");
        };
    }
}
