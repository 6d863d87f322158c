package io.moescore.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The fp16 encoder the CUDA backend's fp16 precision uploads weights with, against the decoder checkpoints use. */
class DTypeTest {

    @Test
    void everyFiniteHalfSurvivesTheRoundTrip() {
        for (int h = 0; h < 0x10000; h++) {
            float f = DType.halfToFloat((short) h);
            if (Float.isNaN(f)) {
                assertTrue(Float.isNaN(DType.halfToFloat(DType.floatToHalf(f))), "NaN " + Integer.toHexString(h));
                continue;
            }
            assertEquals(h, DType.floatToHalf(f) & 0xffff, "half 0x" + Integer.toHexString(h) + " = " + f);
        }
    }

    /** Random floats across fp16's range go to the nearest half, ties to the even one (overflow: rangeEdgesOfHalf). */
    @Test
    void floatsRoundToTheNearestHalf() {
        SplittableRandom random = new SplittableRandom(7);
        for (int i = 0; i < 200_000; i++) {
            float f = (float) (Math.scalb(random.nextDouble(1, 2), random.nextInt(-27, 16)) * (random.nextBoolean() ? 1 : -1));
            if (Math.abs(f) >= 65520f) {
                continue;
            }
            short h = DType.floatToHalf(f);
            double got = DType.halfToFloat(h);
            double error = Math.abs(got - f);
            for (int neighbour : new int[] {(h & 0xffff) - 1, (h & 0xffff) + 1}) {
                float other = DType.halfToFloat((short) neighbour);
                if (Float.isFinite(other) && Math.signum(other) * Math.signum(got) >= 0) {
                    double otherError = Math.abs(other - f);
                    assertTrue(error < otherError || error == otherError && (h & 1) == 0,
                            f + " -> " + got + " but " + other + " is nearer or the even tie");
                }
            }
        }
    }

    @Test
    void rangeEdgesOfHalf() {
        assertEquals(65504f, DType.halfToFloat(DType.floatToHalf(65519.99f)));
        assertEquals(Float.POSITIVE_INFINITY, DType.halfToFloat(DType.floatToHalf(65520f)));
        assertEquals(Float.NEGATIVE_INFINITY, DType.halfToFloat(DType.floatToHalf(-1e6f)));
        assertEquals(0x1p-24f, DType.halfToFloat(DType.floatToHalf(0x1.8p-25f)));  // above half the smallest: up
        assertEquals(0f, DType.halfToFloat(DType.floatToHalf(0x1p-25f)));          // exactly half: to even (zero)
        assertEquals(0x1p-14f, DType.halfToFloat(DType.floatToHalf(0x1.ffep-15f)));  // subnormal rounding into normal
    }
}
