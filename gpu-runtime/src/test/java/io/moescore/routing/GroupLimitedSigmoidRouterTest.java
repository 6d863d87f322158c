package io.moescore.routing;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * DeepSeek-V3's noaux_tc router against a hand-worked example (8 experts in 4 groups of 2, 2 groups eligible, top-3):
 * <pre>
 *   score s    = 0.9  0.1 | 0.6  0.5 | 0.8  0.7 | 0.2  0.3     (sigmoid of the logits)
 *   bias       = 0    0   | 0    0   | 0    0   | 0.7  0
 *   choice c   = 0.9  0.1 | 0.6  0.5 | 0.8  0.7 | 0.9  0.3
 *   group sums of the two best c: 1.0, 1.1, 1.5, 1.2  -> groups 2 and 3 eligible
 *   top-3 c among experts 4..7: expert 6 (0.9), 4 (0.8), 5 (0.7)
 *   gates from s: 0.2, 0.8, 0.7, renormalised by their sum 1.7, times routed_scaling_factor 2.5
 * </pre>
 * Expert 0 has the best score of all but its group is not chosen; expert 6 is chosen only through its bias and is
 * weighted by its uncorrected score.
 */
class GroupLimitedSigmoidRouterTest {
    static final float[] SCORES = {0.9f, 0.1f, 0.6f, 0.5f, 0.8f, 0.7f, 0.2f, 0.3f};
    static final float[] BIAS = {0, 0, 0, 0, 0, 0, 0.7f, 0};

    static float[] logitsOf(float[] scores) {
        float[] l = new float[scores.length];
        for (int i = 0; i < l.length; i++) {
            l[i] = (float) Math.log(scores[i] / (1.0 - scores[i]));
        }
        return l;
    }

    /** Expert -> gate of row 0, from the per-expert lists. */
    static float[] gatesOfRow(HostExpertRouting r, int row) {
        float[] g = new float[r.numExperts()];
        Arrays.fill(g, Float.NaN);
        for (int e = 0; e < r.numExperts(); e++) {
            for (int i = r.offsets()[e]; i < r.offsets()[e + 1]; i++) {
                if (r.tokens()[i] == row) {
                    g[e] = r.gates()[i];
                }
            }
        }
        return g;
    }

    static int[] expertsOfRow(HostExpertRouting r, int row) {
        float[] g = gatesOfRow(r, row);
        return java.util.stream.IntStream.range(0, g.length).filter(e -> !Float.isNaN(g[e])).toArray();
    }

    @Test
    void handWorkedExampleRenormalised() {
        Router router = new GroupLimitedSigmoidRouter(3, 4, 2, true, 2.5f, BIAS);
        HostExpertRouting r = router.route(logitsOf(SCORES), 1, 8);
        assertArrayEquals(new int[] {4, 5, 6}, expertsOfRow(r, 0));
        float[] g = gatesOfRow(r, 0);
        assertEquals(0.8 / 1.7 * 2.5, g[4], 1e-6);
        assertEquals(0.7 / 1.7 * 2.5, g[5], 1e-6);
        assertEquals(0.2 / 1.7 * 2.5, g[6], 1e-6);
    }

    @Test
    void withoutRenormalisingTheGatesAreScaledScores() {
        HostExpertRouting r = new GroupLimitedSigmoidRouter(3, 4, 2, false, 2.5f, BIAS).route(logitsOf(SCORES), 1, 8);
        float[] g = gatesOfRow(r, 0);
        assertEquals(0.8 * 2.5, g[4], 1e-6);
        assertEquals(0.7 * 2.5, g[5], 1e-6);
        assertEquals(0.2 * 2.5, g[6], 1e-6);
    }

    @Test
    void withoutTheBiasTheChoiceFollowsTheScores() {
        // groups 1.0, 1.1, 1.5, 0.5: groups 2 and 1 eligible; top-3 of experts 2..5: 4 (0.8), 5 (0.7), 2 (0.6)
        HostExpertRouting r = new GroupLimitedSigmoidRouter(3, 4, 2, true, 1f, new float[8]).route(logitsOf(SCORES),
                1, 8);
        assertArrayEquals(new int[] {2, 4, 5}, expertsOfRow(r, 0));
        assertEquals(0.6 / 2.1, gatesOfRow(r, 0)[2], 1e-6);
    }

    @Test
    void everyGroupEligibleIsPlainTopKOfTheCorrectedScores() {
        // one group (n_group 1, topk_group 1): the three best c are experts 0 and 6 (0.9 each) and 4 (0.8)
        HostExpertRouting r = new GroupLimitedSigmoidRouter(3, 1, 1, false, 1f, BIAS).route(logitsOf(SCORES), 1, 8);
        assertArrayEquals(new int[] {0, 4, 6}, expertsOfRow(r, 0));
    }

    @Test
    void rowsAreRoutedIndependently() {
        float[] two = new float[16];
        System.arraycopy(logitsOf(SCORES), 0, two, 0, 8);
        float[] reversed = new float[8];
        for (int e = 0; e < 8; e++) {
            reversed[e] = SCORES[7 - e];
        }
        System.arraycopy(logitsOf(reversed), 0, two, 8, 8);
        Router router = new GroupLimitedSigmoidRouter(3, 4, 2, true, 2.5f, BIAS);
        HostExpertRouting both = router.route(two, 2, 8);
        HostExpertRouting second = router.route(Arrays.copyOfRange(two, 8, 16), 1, 8);
        assertArrayEquals(new int[] {4, 5, 6}, expertsOfRow(both, 0));
        assertArrayEquals(expertsOfRow(second, 0), expertsOfRow(both, 1));
        assertArrayEquals(gatesOfRow(second, 0), gatesOfRow(both, 1));
    }

    @Test
    void aNanLogitStillGetsKExpertsAndNanReachesTheGates() {
        float[] logits = logitsOf(SCORES);
        logits[3] = Float.NaN;
        HostExpertRouting r = new GroupLimitedSigmoidRouter(3, 4, 2, true, 2.5f, BIAS).route(logits, 1, 8);
        assertEquals(3, r.tokens().length);
        for (float g : r.gates()) {
            assertTrue(Float.isNaN(g), "the NaN score is in the renormalising sum: " + Arrays.toString(r.gates()));
        }
    }

    @Test
    void inconsistentSizesAreRefused() {
        Router router = new GroupLimitedSigmoidRouter(3, 4, 2, true, 1f, BIAS);
        assertThrows(IllegalArgumentException.class, () -> router.route(new float[6], 1, 6), "6 biases for 8");
        assertThrows(IllegalArgumentException.class, () -> new GroupLimitedSigmoidRouter(5, 4, 2, true, 1f, BIAS)
                .route(logitsOf(SCORES), 1, 8), "top-5 of the 4 experts of 2 groups");
        assertThrows(IllegalArgumentException.class, () -> new GroupLimitedSigmoidRouter(1, 2, 3, true, 1f, BIAS));
    }
}
