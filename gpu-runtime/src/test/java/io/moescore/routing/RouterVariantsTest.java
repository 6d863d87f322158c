package io.moescore.routing;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/**
 * The --routing variants against hand-worked references on small logits: which experts each token gets (ties,
 * NaN rows, tokens with none) and their gates.
 */
class RouterVariantsTest {
    static final float LN_05 = (float) Math.log(0.5);
    static final float LN_03 = (float) Math.log(0.3);
    static final float LN_02 = (float) Math.log(0.2);

    /** Expert -> gate of one row (absent experts missing), from the per-expert lists. */
    static TreeMap<Integer, Float> row(HostExpertRouting r, int row) {
        TreeMap<Integer, Float> m = new TreeMap<>();
        for (int e = 0; e < r.numExperts(); e++) {
            for (int i = r.offsets()[e]; i < r.offsets()[e + 1]; i++) {
                if (r.tokens()[i] == row) {
                    m.put(e, r.gates()[i]);
                }
            }
        }
        return m;
    }

    static void assertRow(HostExpertRouting r, int row, int[] experts, double[] gates) {
        TreeMap<Integer, Float> m = row(r, row);
        assertArrayEquals(experts, m.keySet().stream().mapToInt(Integer::intValue).toArray(), "experts of row " + row);
        for (int j = 0; j < experts.length; j++) {
            float g = m.get(experts[j]);
            if (Double.isNaN(gates[j])) {
                assertTrue(Float.isNaN(g), "row " + row + " expert " + experts[j] + " gate " + g);
            } else {
                assertEquals(gates[j], g, 1e-6, "row " + row + " expert " + experts[j]);
            }
        }
    }

    static final double[] NAN2 = {Double.NaN, Double.NaN};

    @Test
    void topPTakesTheFewestExpertsReachingP() {
        float[] logits = {LN_05, LN_03, LN_02,   // probabilities 0.5 0.3 0.2
                0, 0, 0, 0,                      // (4 experts below) ties: lower index first
        };
        float[] three = {LN_05, LN_03, LN_02, LN_02, LN_03, LN_05};
        assertRow(new TopPRouter(0.5f, 2, false).route(three, 2, 3), 0, new int[] {0}, new double[] {0.5});
        assertRow(new TopPRouter(0.5f, 2, true).route(three, 2, 3), 0, new int[] {0}, new double[] {1.0});
        assertRow(new TopPRouter(0.75f, 3, false).route(three, 2, 3), 0, new int[] {0, 1}, new double[] {0.5, 0.3});
        assertRow(new TopPRouter(0.75f, 3, true).route(three, 2, 3), 1, new int[] {1, 2},
                new double[] {0.3 / 0.8, 0.5 / 0.8});
        // capped at maxK: P = 1 would need all three
        assertRow(new TopPRouter(1f, 2, true).route(three, 2, 3), 0, new int[] {0, 1},
                new double[] {0.5 / 0.8, 0.3 / 0.8});
        float[] ties = {0, 0, 0, 0};
        assertRow(new TopPRouter(0.5f, 4, false).route(ties, 1, 4), 0, new int[] {0, 1}, new double[] {0.25, 0.25});
        assertEquals(7, logits.length);
    }

    @Test
    void topPRoutesNanRowsLikeTopK() {
        float[] logits = {1, Float.NaN, 0, Float.POSITIVE_INFINITY, 0, 0};
        HostExpertRouting r = new TopPRouter(0.1f, 2, true).route(logits, 2, 3);
        assertRow(r, 0, new int[] {0, 1}, NAN2);
        assertRow(r, 1, new int[] {0, 1}, NAN2);
    }

    @Test
    void topPOfOneAtTheModelsKEqualsTopK() {
        long seed = System.nanoTime();
        System.out.println("RouterVariantsTest.topPOfOneAtTheModelsKEqualsTopK seed " + seed);
        Random random = new Random(seed);
        float[] logits = new float[50 * 8];
        for (int i = 0; i < logits.length; i++) {
            logits[i] = (float) random.nextGaussian() * 0.01f;  // flat: the cumulative sum reaches 1 only at k
        }
        for (boolean renormalize : new boolean[] {false, true}) {
            HostExpertRouting p = new TopPRouter(1f, 2, renormalize).route(logits, 50, 8);
            HostExpertRouting k = new TopKSoftmaxRouter(2, renormalize).route(logits, 50, 8);
            assertArrayEquals(k.offsets(), p.offsets());
            assertArrayEquals(k.tokens(), p.tokens());
            assertArrayEquals(k.gates(), p.gates());
        }
    }

    @Test
    void sigmoidGateUsesEveryExpertAboveTheThresholdWithItsRawProbability() {
        float[] logits = {0, 2, -2,   // sigmoid 0.5 (not above 0.5), 0.881, 0.119
                -1, -3, -2,           // none above: a token with no experts
                Float.NaN, 5, -5};    // a NaN logit passes (NaN gate), 5 passes, -5 does not
        HostExpertRouting r = new ThresholdRouter(ThresholdRouter.Gate.SIGMOID, 0.5f).route(logits, 3, 3);
        assertRow(r, 0, new int[] {1}, new double[] {1 / (1 + Math.exp(-2))});
        assertRow(r, 1, new int[] {}, new double[] {});
        assertRow(r, 2, new int[] {0, 1}, new double[] {Double.NaN, 1 / (1 + Math.exp(-5))});
        assertArrayEquals(new int[] {1, 2, 0}, r.tokensPerExpert());
    }

    @Test
    void softmaxGateKeepsRawProbabilitiesAndNanRowsUseEveryExpert() {
        float[] logits = {LN_05, LN_03, LN_02, 0, 0, 0, 0, Float.POSITIVE_INFINITY, 0};
        HostExpertRouting r = new ThresholdRouter(ThresholdRouter.Gate.SOFTMAX, 0.25f).route(logits, 3, 3);
        assertRow(r, 0, new int[] {0, 1}, new double[] {0.5, 0.3});
        assertRow(r, 1, new int[] {0, 1, 2}, new double[] {1 / 3.0, 1 / 3.0, 1 / 3.0});
        assertRow(r, 2, new int[] {0, 1, 2}, new double[] {Double.NaN, Double.NaN, Double.NaN});
        HostExpertRouting none = new ThresholdRouter(ThresholdRouter.Gate.SOFTMAX, 0.55f).route(logits, 2, 3);
        assertRow(none, 0, new int[] {}, new double[] {});
        assertRow(none, 1, new int[] {}, new double[] {});
        assertEquals(0, none.tokens().length);
    }

    @Test
    void sparsemaxMatchesTheWorkedExamples() {
        float[] logits = {1, 0.5f, -1,   // support {0, 1}: tau = (1.5 - 1) / 2 = 0.25 -> 0.75, 0.25, 0
                2, 0, 0,                 // support {0}: tau = 1 -> 1, 0, 0
                1, 1, Float.NEGATIVE_INFINITY,   // ties: 0.5, 0.5; -inf gets 0
                Float.NaN, 0, 0};        // undefined: every expert, NaN gates
        HostExpertRouting r = new ThresholdRouter(ThresholdRouter.Gate.SPARSEMAX, 0).route(logits, 4, 3);
        assertRow(r, 0, new int[] {0, 1}, new double[] {0.75, 0.25});
        assertRow(r, 1, new int[] {0}, new double[] {1});
        assertRow(r, 2, new int[] {0, 1}, new double[] {0.5, 0.5});
        assertRow(r, 3, new int[] {0, 1, 2}, new double[] {Double.NaN, Double.NaN, Double.NaN});
    }

    @Test
    void sparsemaxSumsToOneOnRandomRows() {
        long seed = System.nanoTime();
        System.out.println("RouterVariantsTest.sparsemaxSumsToOneOnRandomRows seed " + seed);
        Random random = new Random(seed);
        float[] p = new float[16];
        for (int trial = 0; trial < 200; trial++) {
            float[] z = new float[16];
            for (int e = 0; e < z.length; e++) {
                z[e] = (float) random.nextGaussian() * 2;
            }
            ThresholdRouter.sparsemax(z, 0, 16, p);
            double sum = 0;
            for (float v : p) {
                assertTrue(v >= 0);
                sum += v;
            }
            assertEquals(1.0, sum, 1e-5, "seed " + seed + " trial " + trial);
        }
    }

    @Test
    void quadraticAndPioneerGatesSoftmaxTheirTransforms() {
        float[] logits = {0, 1, -1};
        // quadratic: softmax(0, 1, 1) = 1/(1+2e), e/(1+2e), e/(1+2e) = 0.155, 0.422, 0.422
        double d = 1 + 2 * Math.E;
        assertRow(new ThresholdRouter(ThresholdRouter.Gate.QUADRATIC, 0.3f).route(logits, 1, 3), 0,
                new int[] {1, 2}, new double[] {Math.E / d, Math.E / d});
        // pioneer: softmax(cos^2 z) = softmax(1, c, c) with c = cos^2(1) = 0.2919: 0.504, 0.248, 0.248
        double c = Math.cos(1) * Math.cos(1);
        double sum = Math.E + 2 * Math.exp(c);
        assertRow(new ThresholdRouter(ThresholdRouter.Gate.PIONEER, 0.2f).route(logits, 1, 3), 0,
                new int[] {0, 1, 2}, new double[] {Math.E / sum, Math.exp(c) / sum, Math.exp(c) / sum});
        assertRow(new ThresholdRouter(ThresholdRouter.Gate.PIONEER, 0.3f).route(logits, 1, 3), 0,
                new int[] {0}, new double[] {Math.E / sum});
        // quadratic of -infinity is +infinity: no softmax, every expert with NaN
        assertRow(new ThresholdRouter(ThresholdRouter.Gate.QUADRATIC, 0.3f).route(
                new float[] {Float.NEGATIVE_INFINITY, 0, 0}, 1, 3), 0, new int[] {0, 1, 2},
                new double[] {Double.NaN, Double.NaN, Double.NaN});
    }

    @Test
    void thresholdsAreChecked() {
        assertThrows(IllegalArgumentException.class, () -> new ThresholdRouter(ThresholdRouter.Gate.SIGMOID, 1f));
        assertThrows(IllegalArgumentException.class, () -> new ThresholdRouter(ThresholdRouter.Gate.SOFTMAX, -0.1f));
        assertThrows(IllegalArgumentException.class, () -> new ThresholdRouter(ThresholdRouter.Gate.SPARSEMAX, .5f));
        assertThrows(IllegalArgumentException.class, () -> new TopPRouter(0f, 2, true));
        assertThrows(IllegalArgumentException.class, () -> new BatchTopKRouter(0, 0, true));
    }

    @Test
    void batchTopKGivesEveryRowOfABlockTheExpertsOfItsSummedLogits() {
        float[] logits = {
                3, 0, 2,    // row 0 prefers expert 0
                0, 0, 2,    // row 1: expert 2
                0, 4, 0,    // row 2: expert 1
                0, 1, 0};   // row 3: expert 1
        // whole batch: sums 3, 5, 4 -> expert 1 for every row
        HostExpertRouting all = new BatchTopKRouter(1, 0, true).route(logits, 4, 3);
        assertArrayEquals(new int[] {0, 4, 0}, all.tokensPerExpert());
        for (int t = 0; t < 4; t++) {
            assertRow(all, t, new int[] {1}, new double[] {1});
        }
        // blocks of 2 rows: sums (3, 0, 4) -> expert 2; (0, 5, 0) -> expert 1
        HostExpertRouting blocks = new BatchTopKRouter(1, 2, false).route(logits, 4, 3);
        double d0 = Math.exp(3) + 1 + Math.exp(2);
        assertRow(blocks, 0, new int[] {2}, new double[] {Math.exp(2) / d0});
        assertRow(blocks, 1, new int[] {2}, new double[] {Math.exp(2) / (2 + Math.exp(2))});
        assertRow(blocks, 2, new int[] {1}, new double[] {Math.exp(4) / (2 + Math.exp(4))});
        assertRow(blocks, 3, new int[] {1}, new double[] {Math.E / (2 + Math.E)});
        // a block of one row is the model's top-k
        float[] random = {0.3f, -1, 2, 0.7f, 0.7f, 0.1f};
        HostExpertRouting one = new BatchTopKRouter(2, 1, true).route(random, 2, 3);
        HostExpertRouting topK = new TopKSoftmaxRouter(2, true).route(random, 2, 3);
        assertArrayEquals(topK.tokens(), one.tokens());
        assertArrayEquals(topK.gates(), one.gates());
        // ties of the sums: lower expert first; the last block may be short
        HostExpertRouting ties = new BatchTopKRouter(2, 2, true).route(new float[] {1, 1, 1, 1, 1, 1, 0, 0, 5}, 3, 3);
        assertRow(ties, 0, new int[] {0, 1}, new double[] {0.5, 0.5});
        assertRow(ties, 2, new int[] {0, 2},
                new double[] {1 / (1 + Math.exp(5)), Math.exp(5) / (1 + Math.exp(5))});
        // blocks restart at each sequence: sequences {0}, {1, 2, 3} with blocks of 2 -> rows {0}, {1, 2}, {3}
        HostExpertRouting bySequence = new BatchTopKRouter(1, 2, true).route(logits, 4, 3, new int[] {0, 1, 4});
        assertRow(bySequence, 0, new int[] {0}, new double[] {1});
        assertRow(bySequence, 1, new int[] {1}, new double[] {1});  // sums (0, 4, 2)
        assertRow(bySequence, 2, new int[] {1}, new double[] {1});
        assertRow(bySequence, 3, new int[] {1}, new double[] {1});
        // the whole batch ignores sequences
        HostExpertRouting whole = new BatchTopKRouter(1, 0, true).route(logits, 4, 3, new int[] {0, 1, 4});
        assertArrayEquals(all.tokens(), whole.tokens());
        assertThrows(IllegalArgumentException.class,
                () -> new BatchTopKRouter(1, 2, true).route(logits, 4, 3, new int[] {0, 3}));
        assertTrue(new BatchTopKRouter(1, 0, true).dependsOnBatch());
        assertTrue(!new BatchTopKRouter(1, 64, true).dependsOnBatch());
    }

    @Test
    void dropExpertsRenormalisesTheRestAsTheModelsRouter() {
        float[] logits = {LN_05, LN_03, LN_02};
        TopKSoftmaxRouter raw = new TopKSoftmaxRouter(1, false);
        // expert 0 removed: softmax over {1, 2} = 0.6, 0.4; top-1 = expert 1 with 0.6
        assertRow(new DropExpertsRouter(raw, new boolean[] {true, false, false}).route(logits, 1, 3), 0,
                new int[] {1}, new double[] {0.6});
        assertRow(new DropExpertsRouter(new TopKSoftmaxRouter(2, false), new boolean[] {false, true, false})
                .route(logits, 1, 3), 0, new int[] {0, 2}, new double[] {0.5 / 0.7, 0.2 / 0.7});
        // the input logits are left as they were
        assertEquals(LN_05, logits[0]);
        // nothing dropped: exactly the model's routing
        HostExpertRouting same = new DropExpertsRouter(raw, new boolean[3]).route(logits, 1, 3);
        HostExpertRouting own = raw.route(logits, 1, 3);
        assertArrayEquals(own.tokens(), same.tokens());
        assertArrayEquals(own.gates(), same.gates());
        assertThrows(IllegalArgumentException.class,
                () -> new DropExpertsRouter(raw, new boolean[2]).route(logits, 1, 3));
    }
}
