package io.replstor.common;

import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Parses and formats byte sizes: {@code 4096}, {@code 512K}, {@code 1GiB}, {@code 1.5G}. Binary units. */
public final class Sizes {
    private static final Pattern SIZE = Pattern.compile("\\s*(\\d+(?:\\.\\d+)?)\\s*([kmgtpe]?)(i?b?)\\s*",
            Pattern.CASE_INSENSITIVE);
    private static final String UNITS = "KMGTPE";

    private Sizes() {
    }

    /** @throws IllegalArgumentException naming the text and the accepted forms */
    public static long parse(String text) {
        Matcher m = SIZE.matcher(text);
        if (!m.matches()) {
            throw new IllegalArgumentException("not a size: '" + text
                    + "' (expected a number of bytes with an optional unit K, M, G, T, P, E, e.g. 512K or 1GiB)");
        }
        String unit = m.group(2).toUpperCase(Locale.ROOT);
        int shift = unit.isEmpty() ? 0 : 10 * (UNITS.indexOf(unit) + 1);
        double value = Double.parseDouble(m.group(1)) * Math.pow(2, shift);
        if (value >= 0x1p63) {
            throw new IllegalArgumentException("size too large: '" + text + "'");
        }
        long bytes = (long) value;
        if (bytes != value) {
            throw new IllegalArgumentException("size is not a whole number of bytes: '" + text + "'");
        }
        return bytes;
    }

    /** Formats with the largest binary unit that divides exactly, e.g. 1073741824 -> "1GiB". */
    public static String format(long bytes) {
        if (bytes == 0) {
            return "0";
        }
        int i = 0;
        long v = bytes;
        while (i < UNITS.length() && v % 1024 == 0) {
            v /= 1024;
            i++;
        }
        return i == 0 ? Long.toString(bytes) : v + String.valueOf(UNITS.charAt(i - 1)) + "iB";
    }
}
