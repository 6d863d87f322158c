package io.moescore.sparsify;

import io.moescore.sparse.Sparse24;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

/** The expert reconstruction's gradients against finite differences, and what tuning must keep and gain. */
class ExpertReconstructionTest {
    static final int HIDDEN = 32;
    static final int FFN = 64;
    final Random random = new Random(11);

    float[] randn(int n, double scale) {
        float[] f = new float[n];
        for (int i = 0; i < n; i++) {
            f[i] = (float) (random.nextGaussian() * scale);
        }
        return f;
    }

    /** Central differences (fp32 forward, so the entries probed are each matrix's largest gradients). */
    @Test
    void gradientsMatchFiniteDifferences() {
        int n = 40;
        float[] x = randn(n * HIDDEN, 1);
        float[] target = randn(n * HIDDEN, 0.3);
        float[][] w = {randn(FFN * HIDDEN, 0.4), randn(FFN * HIDDEN, 0.4), randn(HIDDEN * FFN, 0.4)};
        float[][] grad = ExpertReconstruction.gradients(x, target, n, HIDDEN, FFN, w[0], w[1], w[2]);
        String[] names = {"gate", "up", "down"};
        for (int m = 0; m < 3; m++) {
            float[] g = grad[m];
            Integer[] order = java.util.stream.IntStream.range(0, g.length).boxed()
                    .sorted((p, q) -> Float.compare(Math.abs(g[q]), Math.abs(g[p]))).toArray(Integer[]::new);
            for (int probe = 0; probe < 12; probe++) {
                int i = order[probe * 3];
                float saved = w[m][i];
                float h = 1e-2f;
                w[m][i] = saved + h;
                double plus = ExpertReconstruction.error(x, target, n, HIDDEN, FFN, w[0], w[1], w[2]);
                w[m][i] = saved - h;
                double minus = ExpertReconstruction.error(x, target, n, HIDDEN, FFN, w[0], w[1], w[2]);
                w[m][i] = saved;
                double numeric = (plus - minus) / (2 * h);
                assertEquals(numeric, grad[m][i], 1e-2 * Math.abs(numeric), names[m] + "[" + i + "]");
            }
        }
    }

    @Test
    void tuningKeepsTheTwoFourMaskAndLowersTheError() {
        int n = 2000;
        float[] x = randn(n * HIDDEN, 1);
        float[][] dense = {randn(FFN * HIDDEN, 0.25), randn(FFN * HIDDEN, 0.25), randn(HIDDEN * FFN, 0.2)};
        float[][] sparse = {Sparse24.pruneMagnitude(dense[0], FFN, HIDDEN), Sparse24.pruneMagnitude(dense[1], FFN, HIDDEN),
            Sparse24.pruneMagnitude(dense[2], HIDDEN, FFN)};
        float[][] before = {sparse[0].clone(), sparse[1].clone(), sparse[2].clone()};
        float[][] again = {sparse[0].clone(), sparse[1].clone(), sparse[2].clone()};
        ExpertReconstruction.Options options = new ExpertReconstruction.Options(300, 3e-3, 256, 5);
        ExpertReconstruction.Result r = ExpertReconstruction.tune(x, n, HIDDEN, FFN, dense[0], dense[1], dense[2],
                sparse[0], sparse[1], sparse[2], options);
        System.out.printf("reconstruction error %.3e -> %.3e%n", r.initialError(), r.finalError());
        assertTrue(r.finalError() < 0.85 * r.initialError(), r.initialError() + " -> " + r.finalError());
        for (int m = 0; m < 3; m++) {
            for (int i = 0; i < sparse[m].length; i++) {
                assertEquals(before[m][i] == 0, sparse[m][i] == 0, "matrix " + m + " weight " + i + " changed mask");
            }
        }
        ExpertReconstruction.tune(x, n, HIDDEN, FFN, dense[0], dense[1], dense[2], again[0], again[1], again[2],
                options);
        for (int m = 0; m < 3; m++) {
            assertArrayEquals(sparse[m], again[m], "same seed, same weights");
        }
        ExpertReconstruction.Result none = ExpertReconstruction.tune(x, n, HIDDEN, FFN, dense[0], dense[1], dense[2],
                before[0].clone(), before[1].clone(), before[2].clone(), ExpertReconstruction.Options.NONE);
        assertEquals(none.initialError(), none.finalError());
    }

    @Test
    void refusesMismatchedShapesAndSettings() {
        float[] w = new float[FFN * HIDDEN];
        assertThrows(IllegalArgumentException.class, () -> ExpertReconstruction.tune(new float[5], 1, HIDDEN, FFN, w,
                w, w, w.clone(), w.clone(), w.clone(), ExpertReconstruction.Options.of(1)));
        assertThrows(IllegalArgumentException.class, () -> new ExpertReconstruction.Options(10, 0, 512, 1));
        assertThrows(IllegalArgumentException.class, () -> new ExpertReconstruction.Options(-1, 1e-3, 512, 1));
    }
}
