package io.moescore.sparsify;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.moescore.TestModels;
import io.moescore.batch.TokenBatch;
import io.moescore.backend.Precision;
import io.moescore.backend.select.Backends;
import io.moescore.engine.Engine;
import io.moescore.engine.ScoreOptions;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Exact Gram sums: the same bits whatever order and grouping the parts come in, equal to exact arithmetic to the
 * 2^-64 grid; and through the engine, Hessians that do not depend on how calibration sequences are batched.
 */
class ExactGramTest {
    @Test
    void partsAddToTheSameBitsInAnyOrderAndGrouping() {
        long seed = 20261207L;
        System.out.println("ExactGramTest seed " + seed);
        Random random = new Random(seed);
        int n = 7;
        List<float[]> parts = new ArrayList<>();
        List<Integer> rows = new ArrayList<>();
        for (int p = 0; p < 40; p++) {
            int r = 1 + random.nextInt(9);
            float[] a = new float[r * n];
            for (int i = 0; i < a.length; i++) {
                // magnitudes from 1e-6 to 1e4, both signs: fp64 sums of these lose bits in different places per order
                a[i] = (float) (random.nextGaussian() * Math.pow(10, random.nextInt(11) - 6));
            }
            parts.add(a);
            rows.add(r);
        }
        long[] inOrder = ExactGram.zeros(n);
        for (int p = 0; p < parts.size(); p++) {
            ExactGram.addGram(inOrder, parts.get(p), rows.get(p), n);
        }
        List<Integer> shuffled = new ArrayList<>();
        for (int p = 0; p < parts.size(); p++) {
            shuffled.add(p);
        }
        Collections.shuffle(shuffled, random);
        long[] left = ExactGram.zeros(n);
        long[] right = ExactGram.zeros(n);
        for (int k = 0; k < shuffled.size(); k++) {
            int p = shuffled.get(k);
            ExactGram.addGram(k % 3 == 0 ? left : right, parts.get(p), rows.get(p), n);
        }
        ExactGram.add(right, 0, left);
        assertArrayEquals(inOrder, right, "two partial sums, another order");

        // against exact arithmetic: each part's fp64 entry rounded to 2^-64, summed exactly
        double[] dense = ExactGram.toSymmetric(inOrder, n);
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                BigDecimal exact = BigDecimal.ZERO;
                for (int p = 0; p < parts.size(); p++) {
                    float[] a = parts.get(p);
                    double sum = 0;
                    for (int t = 0; t < rows.get(p); t++) {
                        sum += (double) a[t * n + Math.min(i, j)] * a[t * n + Math.max(i, j)];
                    }
                    exact = exact.add(new BigDecimal(sum).multiply(BigDecimal.valueOf(2).pow(64))
                            .setScale(0, java.math.RoundingMode.HALF_UP));
                }
                double expected = exact.divide(BigDecimal.valueOf(2).pow(64)).doubleValue();
                assertEquals(expected, dense[i * n + j], Math.ulp(expected) * 2, "(" + i + ", " + j + ")");
            }
        }
    }

    @Test
    void negativeTinyAndHugeValuesRoundTrip() {
        long[] sums = new long[2 * 6];
        double[] values = {-1e-10, 3.5, -123456.789, 0x1p-70, -0x1p-64, 0x1p60};
        for (int i = 0; i < values.length; i++) {
            ExactGram.add(sums, i, values[i]);
        }
        assertEquals(-1e-10, ExactGram.value(sums, 0), 0x1p-65, "to the 2^-64 grid");
        assertEquals(3.5, ExactGram.value(sums, 1));
        assertEquals(-123456.789, ExactGram.value(sums, 2), 1e-10);
        assertEquals(0, ExactGram.value(sums, 3), "below the grid");
        assertEquals(-0x1p-64, ExactGram.value(sums, 4));
        assertEquals(0x1p60, ExactGram.value(sums, 5));
        ExactGram.add(sums, 0, 1e-10);
        assertEquals(0, ExactGram.value(sums, 0), "x + (-x) is exactly 0");
        assertThrows(ArithmeticException.class, () -> ExactGram.add(new long[2], 0, 0x1p70));
        long[] near = new long[2];
        ExactGram.add(near, 0, 0x1p62);
        assertThrows(ArithmeticException.class, () -> ExactGram.add(near, 0, 0x1p62), "2^63 overflows");
        assertThrows(ArithmeticException.class, () -> ExactGram.add(new long[2], 0, Double.NaN));
    }

    @Test
    void groupsFollowTheSequencesInOrderWhateverTheRowOrder() {
        int[] offsets = {0, 3, 5, 9};
        SequenceGroups g = SequenceGroups.of(new int[] {7, 0, 8, 2, 6}, offsets);
        assertArrayEquals(new int[] {0, 2}, g.sequence());
        assertArrayEquals(new int[] {0, 2, 5}, g.start());
        assertArrayEquals(new int[] {1, 3, 0, 2, 4}, g.order(), "stable within a sequence");
        assertThrows(IllegalArgumentException.class, () -> SequenceGroups.of(new int[] {9}, offsets));
        assertEquals(1, SequenceGroups.of(new int[] {4, 1}, null).groups(), "sequences not told: one group");
    }

    /** The demo model's Hessians and expert inputs from 4 sequences one by one, and from one batch of all 4. */
    @Test
    void batchingDoesNotChangeTheHessiansOrTheExpertInputs() {
        List<int[]> rows;
        try {
            rows = CalibrationRows.read(TestModels.repoRoot().resolve("demo/calibration.jsonl")).subList(0, 4);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        ExpertHessians one = new ExpertHessians(0, 3);
        ExpertHessians batched = new ExpertHessians(0, 3);
        ExpertInputs oneInputs = new ExpertInputs(300, 0, 3);
        ExpertInputs batchedInputs = new ExpertInputs(300, 0, 3);
        try (io.moescore.backend.Backend cpu = Backends.open("cpu", 2, 0, Precision.BF16, false);
             Engine engine = Engine.load(TestModels.demoModel(), cpu)) {
            for (int[] r : rows) {
                engine.score(TokenBatch.of(r), ScoreOptions.SUMS_ONLY,
                        io.moescore.engine.RoutedInputs.both(one, oneInputs));
            }
            batchedInputs.name(new long[] {0, 1, 2, 3});
            engine.score(TokenBatch.of(rows.toArray(int[][]::new)), ScoreOptions.SUMS_ONLY,
                    io.moescore.engine.RoutedInputs.both(batched, batchedInputs));
        }
        int[] compared = {0};
        one.forEachExact((key, sums, cols) -> {
            long[] other = new long[0];
            long[][] found = {null};
            batched.forEachExact((k, s, c) -> {
                if (k.equals(key)) {
                    found[0] = s;
                }
            });
            assertArrayEquals(sums, found[0] == null ? other : found[0], key.toString());
            compared[0]++;
        });
        assertTrue(compared[0] > 8, compared[0] + " Hessians");
        for (int e = 0; e < 8; e++) {
            assertEquals(oneInputs.tokens(3, e), batchedInputs.tokens(3, e));
            assertArrayEquals(oneInputs.rows(3, e), batchedInputs.rows(3, e), "layer 3 expert " + e);
        }
    }
}
