package io.moescore.routing;

import java.util.Arrays;

/**
 * softmax over all experts, keep the k largest probabilities (lowest expert index first on ties), optionally
 * renormalised to sum to one: the gate of Mixtral (always renormalised), Qwen2/3-MoE and OLMoE (norm_topk_prob).
 *
 * <p>Non-finite logits have a defined routing, the same on every backend (router.cu): a row with a NaN or
 * +Infinity logit, or whose logits are all -Infinity, has no defined softmax, so all its probabilities are NaN;
 * NaN counts as larger than any number (as in torch.topk), so such a row goes to experts 0..k-1 with NaN gates.
 * The NaN then reaches the row's scores, which the engine flags; it never becomes an expert index of -1.
 */
public record TopKSoftmaxRouter(int k, boolean renormalize) implements Router {
    public TopKSoftmaxRouter {
        if (k < 1) {
            throw new IllegalArgumentException("top-k must be at least 1, got " + k);
        }
    }

    @Override
    public HostExpertRouting route(float[] logits, int rows, int numExperts) {
        if (k > numExperts) {
            throw new IllegalArgumentException("top-" + k + " routing over " + numExperts + " experts");
        }
        int[][] chosen = new int[rows][k];
        float[][] gates = new float[rows][k];
        float[] probs = new float[numExperts];
        boolean[] taken = new boolean[numExperts];
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
            if (Float.isNaN(sum)) {  // NaN or +Infinity among the logits, or all -Infinity: no softmax
                Arrays.fill(probs, Float.NaN);
            }
            Arrays.fill(taken, false);
            float kept = 0;
            for (int j = 0; j < k; j++) {
                int best = -1;
                for (int e = 0; e < numExperts; e++) {
                    if (!taken[e] && (best < 0 || larger(probs[e], probs[best]))) {
                        best = e;
                    }
                }
                chosen[t][j] = best;
                gates[t][j] = probs[best] / sum;
                kept += gates[t][j];
                taken[best] = true;
            }
            if (renormalize) {
                for (int j = 0; j < k; j++) {
                    gates[t][j] /= kept;
                }
            }
        }
        return HostExpertRouting.fromChoices(numExperts, chosen, gates);
    }

    /** a > b, NaN being larger than any number (equal NaNs keep the lower expert index). */
    static boolean larger(float a, float b) {
        return a > b || (Float.isNaN(a) && !Float.isNaN(b));
    }
}
