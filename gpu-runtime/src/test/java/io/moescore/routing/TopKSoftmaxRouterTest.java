package io.moescore.routing;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The reference router: unchanged for finite logits (against the selection it had before non-finite logits
 * got a defined routing), and NaN / infinite logits routed to experts 0..k-1 with NaN gates, never to index -1.
 */
class TopKSoftmaxRouterTest {
    /** The router as it was (finite logits only): taken probabilities marked -1. */
    static HostExpertRouting before(float[] logits, int rows, int numExperts, int k, boolean renormalize) {
        int[][] chosen = new int[rows][k];
        float[][] gates = new float[rows][k];
        float[] probs = new float[numExperts];
        for (int t = 0; t < rows; t++) {
            int base = t * numExperts;
            float max = Float.NEGATIVE_INFINITY;
            for (int e = 0; e < numExperts; e++) {
                max = Math.max(max, logits[base + e]);
            }
            float sum = 0;
            for (int e = 0; e < numExperts; e++) {
                probs[e] = (float) Math.exp(logits[base + e] - max);
                sum += probs[e];
            }
            float kept = 0;
            for (int j = 0; j < k; j++) {
                int best = -1;
                for (int e = 0; e < numExperts; e++) {
                    if (probs[e] >= 0 && (best < 0 || probs[e] > probs[best])) {
                        best = e;
                    }
                }
                chosen[t][j] = best;
                gates[t][j] = probs[best] / sum;
                kept += gates[t][j];
                probs[best] = -1;
            }
            if (renormalize) {
                for (int j = 0; j < k; j++) {
                    gates[t][j] /= kept;
                }
            }
        }
        return HostExpertRouting.fromChoices(numExperts, chosen, gates);
    }

    @Test
    void finiteLogitsRouteExactlyAsBefore() {
        long seed = System.nanoTime();
        System.out.println("TopKSoftmaxRouterTest seed " + seed);
        Random random = new Random(seed);
        for (int trial = 0; trial < 200; trial++) {
            int experts = 1 + random.nextInt(64);
            int k = 1 + random.nextInt(Math.min(experts, 8));
            int rows = 1 + random.nextInt(50);
            float[] logits = new float[rows * experts];
            for (int i = 0; i < logits.length; i++) {
                // ties (small integers), huge spreads (exp underflows to 0) and ordinary values
                logits[i] = switch (random.nextInt(3)) {
                    case 0 -> random.nextInt(3);
                    case 1 -> (float) (random.nextGaussian() * 200);
                    default -> (float) random.nextGaussian();
                };
            }
            boolean renormalize = random.nextBoolean();
            HostExpertRouting now = new TopKSoftmaxRouter(k, renormalize).route(logits, rows, experts);
            HostExpertRouting was = before(logits, rows, experts, k, renormalize);
            String what = "seed " + seed + " trial " + trial;
            assertArrayEquals(was.offsets(), now.offsets(), what);
            assertArrayEquals(was.tokens(), now.tokens(), what);
            assertArrayEquals(was.gates(), now.gates(), what);
        }
    }

    @Test
    void nonFiniteLogitsGoToTheFirstExpertsWithNaNGates() {
        float nan = Float.NaN;
        float inf = Float.POSITIVE_INFINITY;
        float[][] rows = {
            {0.5f, nan, 2f, -1f, 0f},
            {inf, 0.5f, 2f, -1f, 0f},
            {-inf, -inf, -inf, -inf, -inf},
            {nan, nan, nan, nan, nan},
            {0.5f, 3f, 2f, inf, inf},
        };
        for (boolean renormalize : new boolean[] {false, true}) {
            for (float[] row : rows) {
                HostExpertRouting r = new TopKSoftmaxRouter(2, renormalize).route(row, 1, row.length);
                assertArrayEquals(new int[] {1, 1, 0, 0, 0}, r.tokensPerExpert(), java.util.Arrays.toString(row));
                for (float g : r.gates()) {
                    assertTrue(Float.isNaN(g), "gate " + g + " of " + java.util.Arrays.toString(row));
                }
            }
        }
    }

    @Test
    void aNonFiniteRowLeavesItsNeighboursAlone() {
        float[] logits = {1f, 3f, 2f, Float.NaN, 0f, 0f, 5f, 1f, 4f};
        HostExpertRouting r = new TopKSoftmaxRouter(1, false).route(logits, 3, 3);
        // row 0 -> expert 1, row 1 (NaN) -> expert 0, row 2 -> expert 0
        assertArrayEquals(new int[] {0, 2, 3, 3}, r.offsets());
        assertArrayEquals(new int[] {1, 2, 0}, r.tokens());
        assertTrue(Float.isNaN(r.gates()[0]));
        assertTrue(Float.isFinite(r.gates()[1]) && Float.isFinite(r.gates()[2]));
    }

    @Test
    void anExpertOutsideTheRangeIsNamed() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> HostExpertRouting.fromChoices(4, new int[][] {{0}, {-1}}, new float[][] {{1}, {1}}));
        assertTrue(e.getMessage().contains("row 1") && e.getMessage().contains("-1"), e.getMessage());
        assertEquals(2, HostExpertRouting.fromChoices(4, new int[][] {{0}, {3}}, new float[][] {{1}, {1}})
                .tokens().length);
    }
}
