package io.replstor.common;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class SizesTest {
    @Test
    void parsesBinaryUnits() {
        assertEquals(4096, Sizes.parse("4096"));
        assertEquals(512 << 10, Sizes.parse("512K"));
        assertEquals(1L << 30, Sizes.parse("1GiB"));
        assertEquals(1L << 30, Sizes.parse("1g"));
        assertEquals(3L << 29, Sizes.parse("1.5G"));
        assertEquals(2L << 40, Sizes.parse(" 2 TiB "));
    }

    @Test
    void rejectsNonsenseWithTheAcceptedForms() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Sizes.parse("ten"));
        assertEquals("not a size: 'ten' (expected a number of bytes with an optional unit K, M, G, T, P, E, e.g. 512K or 1GiB)",
                e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Sizes.parse("1.3"));
        assertThrows(IllegalArgumentException.class, () -> Sizes.parse("9E"));
    }

    @Test
    void formatsWithTheLargestExactUnit() {
        assertEquals("1GiB", Sizes.format(1L << 30));
        assertEquals("1536MiB", Sizes.format(3L << 29));
        assertEquals("1000", Sizes.format(1000));
    }
}
