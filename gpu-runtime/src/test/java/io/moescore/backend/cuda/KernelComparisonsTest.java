package io.moescore.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The GPU tests' failure messages, checked without a GPU: they say where results differ, and the seed. */
class KernelComparisonsTest {
    @Test
    void aFailingComparisonNamesTheFirstAndFarthestElementAndTheSeed() {
        float[] ref = {1, 2, 3, 4, 5, 6};
        float[] got = {1, 2, 3.5f, 4, 5, 9};  // rows of 3: (0, 2) off by 0.5, (1, 2) off by 3; rms of ref 3.89
        AssertionError e = assertThrows(AssertionError.class,
                () -> KernelComparisons.assertValuesClose(ref, got, 3, 1e-2, "test op"));
        String m = e.getMessage();
        assertTrue(m.startsWith("test op: relative error "), m);
        assertTrue(m.contains("> 0.01"), m);
        assertTrue(m.contains("first element off by more than 0.0389 (tolerance x rms of the CPU's): index 2 (row 0, "
                + "column 2): cpu 3.0, gpu 3.5"), m);
        assertTrue(m.contains("farthest off: index 5 (row 1, column 2): cpu 6.0, gpu 9.0"), m);
        assertTrue(m.endsWith("seed " + KernelComparisons.SEED), m);
    }

    @Test
    void aNonFiniteResultIsWhereTheyDiffer() {
        float[] ref = {1, 2, 3, 4};
        float[] got = {1, Float.NaN, 3, 4};
        AssertionError e = assertThrows(AssertionError.class,
                () -> KernelComparisons.assertValuesClose(ref, got, 2, 1e-2, "nan"));
        assertTrue(e.getMessage().contains("index 1 (row 0, column 1): cpu 2.0, gpu NaN"), e.getMessage());
    }

    @Test
    void closeResultsPassAndLogProbFailuresNameTheToken() {
        float[] ref = {1, 2, 3, 4};
        assertEquals(0, KernelComparisons.assertValuesClose(ref, ref.clone(), 2, 0, "same"));
        AssertionError e = assertThrows(AssertionError.class,
                () -> KernelComparisons.assertLogProbsClose(new float[] {-1, -2, -3}, new float[] {-1, -2.5f, -3}, 3,
                        0.1, "log-probs"));
        assertTrue(e.getMessage().contains("log-prob of token 1 cpu -2.0, gpu -2.5, off by more than 0.1"),
                e.getMessage());
        assertTrue(e.getMessage().endsWith("seed " + KernelComparisons.SEED), e.getMessage());
    }
}
