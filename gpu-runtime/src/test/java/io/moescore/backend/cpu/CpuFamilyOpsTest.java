package io.moescore.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.moescore.backend.AttentionHeads;
import io.moescore.backend.ColumnBlocks;
import io.moescore.backend.IntTensor;
import io.moescore.backend.LogProbs;
import io.moescore.backend.Tensor;
import io.moescore.model.Rope;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The CPU ops the issue-24 families added (latent attention's column copies and v heads narrower than q/k, rotary
 * embeddings over part of each head, interleaved or scaled, Granite's scales and logits divisor) against hand-worked
 * values and naive double-precision loops written here.
 */
class CpuFamilyOpsTest {
    static final long SEED = 20240624L;
    static CpuBackend cpu;

    @BeforeAll
    static void start() {
        cpu = new CpuBackend(2);
        System.out.println("CpuFamilyOpsTest seed " + SEED);
    }

    @AfterAll
    static void stop() {
        cpu.close();
    }

    static float[] random(Random r, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) r.nextGaussian();
        }
        return x;
    }

    @Test
    void copyColumnsSplitsJoinsAndBroadcasts() {
        // two rows of [a0 a1 | b0 b1 b2]: the b block broadcast after each of 2 heads' single column
        float[] src = {1, 2, 10, 20, 30, 3, 4, 40, 50, 60};
        try (Tensor s = cpu.activation(src, 2, 5);
             Tensor d = cpu.activation(new float[2 * 8], 2, 8)) {
            cpu.copyColumns(s, new ColumnBlocks(0, 1, 2, 1), d, new ColumnBlocks(0, 4, 2, 1));
            cpu.copyColumns(s, new ColumnBlocks(2, 0, 2, 3), d, new ColumnBlocks(1, 4, 2, 3));
            assertArrayEquals(new float[] {1, 10, 20, 30, 2, 10, 20, 30, 3, 40, 50, 60, 4, 40, 50, 60}, cpu.toHost(d));
            assertThrows(IllegalArgumentException.class,
                    () -> cpu.copyColumns(s, ColumnBlocks.span(3, 3), d, ColumnBlocks.span(0, 3)), "past the end");
        }
    }

    @Test
    void scaleMultipliesEveryElement() {
        try (Tensor x = cpu.activation(new float[] {1, -2, 0.5f, 4}, 2, 2)) {
            cpu.scale(x, 0.25f);
            assertArrayEquals(new float[] {0.25f, -0.5f, 0.125f, 1}, cpu.toHost(x));
        }
    }

    /** A rotary pair rotates by position x frequency: (1, 0) at position 3 with frequency 1 is (cos 3, sin 3). */
    @Test
    void ropeRotatesAPairByHand() {
        Rope rope = Rope.plain(10000, 2);  // one pair, frequency theta^0 = 1
        try (Tensor x = cpu.activation(new float[] {1, 0, 0, 1}, 2, 2);
             IntTensor pos = cpu.ints(new int[] {3, 3})) {
            cpu.rope(x, ColumnBlocks.heads(1, 2), rope, pos);
            assertArrayEquals(new float[] {(float) Math.cos(3), (float) Math.sin(3), (float) -Math.sin(3),
                    (float) Math.cos(3)}, cpu.toHost(x), 1e-6f);
        }
    }

    /** Only the rotary columns of each block move; the others (GLM's second half, MLA's nope part) stay. */
    @Test
    void ropeOverPartOfEachHeadLeavesTheRestAlone() {
        Random r = new Random(SEED);
        float[] x = random(r, 3 * 2 * 8);
        Rope rope = new Rope(10000, 4, false, null);
        try (Tensor t = cpu.activation(x, 3, 16);
             IntTensor pos = cpu.ints(new int[] {0, 5, 9})) {
            cpu.rope(t, new ColumnBlocks(0, 8, 2, 4), rope, pos);
            float[] y = cpu.toHost(t);
            for (int row = 0; row < 3; row++) {
                for (int head = 0; head < 2; head++) {
                    for (int c = 4; c < 8; c++) {
                        int i = row * 16 + head * 8 + c;
                        assertEquals(x[i], y[i], 0f, "column " + c + " of head " + head + " is not rotary");
                    }
                }
            }
            for (int i = 0; i < 8; i++) {
                assertEquals(x[i], y[i], 0f, "position 0 rotates by 0");
            }
        }
    }

    /**
     * Interleaved pairs (2i, 2i+1), as transformers' apply_rotary_pos_emb_interleave gathers them to the halves
     * before rotate_half: rotating the gathered vector the plain way gives the gathered result, so q.k is the same.
     */
    @Test
    void interleavedRopeIsRotateHalfOfTheGatheredColumns() {
        Random r = new Random(SEED + 1);
        int d = 8;
        float[] x = random(r, d);
        float[] gathered = new float[d];
        for (int i = 0; i < d / 2; i++) {
            gathered[i] = x[2 * i];
            gathered[i + d / 2] = x[2 * i + 1];
        }
        Rope interleaved = new Rope(500, d, true, null);
        Rope halves = new Rope(500, d, false, null);
        try (Tensor a = cpu.activation(x, 1, d);
             Tensor b = cpu.activation(gathered, 1, d);
             IntTensor pos = cpu.ints(new int[] {7})) {
            cpu.rope(a, ColumnBlocks.heads(1, d), interleaved, pos);
            cpu.rope(b, ColumnBlocks.heads(1, d), halves, pos);
            float[] ya = cpu.toHost(a);
            float[] yb = cpu.toHost(b);
            for (int i = 0; i < d / 2; i++) {
                assertEquals(yb[i], ya[2 * i], 0f);
                assertEquals(yb[i + d / 2], ya[2 * i + 1], 0f);
            }
        }
    }

    /** YaRN's attention factor multiplies cos and sin: every rotated pair's length by that factor. */
    @Test
    void ropeAttentionFactorScalesTheRotatedColumns() {
        float[] x = {3, 4};
        Rope rope = new Rope(10000, 2, false, new Rope.Yarn(4, 64, 32, 1, 0.5, true));
        try (Tensor t = cpu.activation(x, 1, 2);
             IntTensor pos = cpu.ints(new int[] {11})) {
            cpu.rope(t, ColumnBlocks.heads(1, 2), rope, pos);
            float[] y = cpu.toHost(t);
            assertEquals(2.5, Math.hypot(y[0], y[1]), 1e-5, "|(3, 4)| = 5, halved");
        }
    }

    /** Causal attention with v heads narrower than q/k and any scale, against naive double loops. */
    @Test
    void attentionWithNarrowerValueHeadsMatchesNaiveLoops() {
        Random r = new Random(SEED + 2);
        int heads = 4;
        int kvHeads = 2;
        int qk = 6;
        int vd = 3;
        double scale = 0.37;
        int[] offsets = {0, 5, 7};
        int rows = 7;
        float[] q = random(r, rows * heads * qk);
        float[] k = random(r, rows * kvHeads * qk);
        float[] v = random(r, rows * kvHeads * vd);
        try (Tensor qt = cpu.activation(q, rows, heads * qk);
             Tensor kt = cpu.activation(k, rows, kvHeads * qk);
             Tensor vt = cpu.activation(v, rows, kvHeads * vd);
             Tensor out = cpu.activation(rows, heads * vd);
             IntTensor off = cpu.ints(offsets)) {
            cpu.attention(qt, kt, vt, off, new AttentionHeads(heads, kvHeads, qk, vd, scale), 0, out);
            float[] o = cpu.toHost(out);
            for (int s = 0; s + 1 < offsets.length; s++) {
                for (int row = offsets[s]; row < offsets[s + 1]; row++) {
                    for (int h = 0; h < heads; h++) {
                        int kh = h / (heads / kvHeads);
                        double[] w = new double[row - offsets[s] + 1];
                        double max = Double.NEGATIVE_INFINITY;
                        for (int j = offsets[s]; j <= row; j++) {
                            double dot = 0;
                            for (int c = 0; c < qk; c++) {
                                dot += (double) q[(row * heads + h) * qk + c] * k[(j * kvHeads + kh) * qk + c];
                            }
                            w[j - offsets[s]] = dot * scale;
                            max = Math.max(max, dot * scale);
                        }
                        double sum = 0;
                        for (int j = 0; j < w.length; j++) {
                            w[j] = Math.exp(w[j] - max);
                            sum += w[j];
                        }
                        for (int c = 0; c < vd; c++) {
                            double acc = 0;
                            for (int j = offsets[s]; j <= row; j++) {
                                acc += w[j - offsets[s]] / sum * v[(j * kvHeads + kh) * vd + c];
                            }
                            assertEquals(acc, o[(row * heads + h) * vd + c], 1e-5, "row " + row + " head " + h);
                        }
                    }
                }
            }
        }
    }

    @Test
    void logProbsOfDividedLogits() {
        // one row, hidden (1, 0), vocab rows (2, 0), (0, 0), (-2, 0): logits 2, 0, -2, divided by 2: 1, 0, -1
        try (Tensor x = cpu.activation(new float[] {1, 0}, 1, 2);
             Tensor w = cpu.activation(new float[] {2, 0, 0, 0, -2, 0}, 3, 2);
             IntTensor target = cpu.ints(new int[] {1})) {
            LogProbs lp = cpu.logProbs(x, w, target, new int[] {0}, 2, 2f);
            double logSumExp = Math.log(Math.E + 1 + 1 / Math.E);
            assertEquals(0 - logSumExp, lp.targetLogProbs()[0], 1e-6);
            assertArrayEquals(new int[] {0, 1}, lp.topTokens()[0]);
        }
    }
}
