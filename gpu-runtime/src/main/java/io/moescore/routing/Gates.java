package io.moescore.routing;

import java.util.Arrays;

/**
 * The arithmetic the softmax routers share, so each variant computes a token's probabilities and ranks experts
 * exactly as {@link TopKSoftmaxRouter} does (the model's own router stays bit-identical).
 */
final class Gates {
    private Gates() {
    }

    /**
     * exp(z_e - max z) of one row into {@code exp[0..n)}; returns their sum. A row with a NaN or +Infinity logit,
     * or whose logits are all -Infinity, has no softmax: {@code exp} is then all NaN and the sum NaN.
     */
    static float softmaxNumerators(float[] logits, int base, int n, float[] exp) {
        float max = Float.NEGATIVE_INFINITY;
        for (int e = 0; e < n; e++) {
            max = Math.max(max, logits[base + e]);
        }
        float sum = 0;
        for (int e = 0; e < n; e++) {
            exp[e] = (float) Math.exp(logits[base + e] - max);
            sum += exp[e];
        }
        if (Float.isNaN(sum)) {  // NaN or +Infinity among the logits, or all -Infinity: no softmax
            Arrays.fill(exp, 0, n, Float.NaN);
        }
        return sum;
    }

    /**
     * The indices of the {@code k} largest of {@code values[0..n)}, largest first; ties: lower index first; NaN is
     * larger than any number ({@link TopKSoftmaxRouter#larger}).
     */
    static int[] largest(float[] values, int n, int k) {
        boolean[] taken = new boolean[n];
        int[] order = new int[k];
        for (int j = 0; j < k; j++) {
            int best = -1;
            for (int e = 0; e < n; e++) {
                if (!taken[e] && (best < 0 || TopKSoftmaxRouter.larger(values[e], values[best]))) {
                    best = e;
                }
            }
            order[j] = best;
            taken[best] = true;
        }
        return order;
    }

    /**
     * The gates of the chosen experts: exp_e / sum (their softmax probability), divided by the sum of the chosen
     * probabilities where {@code renormalize} (norm_topk_prob, Mixtral), in the order chosen.
     */
    static float[] softmaxGates(float[] exp, float sum, int[] chosen, boolean renormalize) {
        float[] gates = new float[chosen.length];
        float kept = 0;
        for (int j = 0; j < chosen.length; j++) {
            gates[j] = exp[chosen[j]] / sum;
            kept += gates[j];
        }
        if (renormalize) {
            for (int j = 0; j < chosen.length; j++) {
                gates[j] /= kept;
            }
        }
        return gates;
    }
}
