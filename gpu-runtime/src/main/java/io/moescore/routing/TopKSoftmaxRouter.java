package io.moescore.routing;

/**
 * softmax over all experts, keep the k largest probabilities (lowest expert index first on ties), optionally
 * renormalised to sum to one: the gate of Mixtral (always renormalised), Qwen2/3-MoE and OLMoE (norm_topk_prob).
 */
public record TopKSoftmaxRouter(int k, boolean renormalize) implements Router {
    public TopKSoftmaxRouter {
        if (k < 1) {
            throw new IllegalArgumentException("top-k must be at least 1, got " + k);
        }
    }

    @Override
    public HostExpertRouting route(float[] logits, int rows, int numExperts) {
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
                probs[best] = -1; // taken
            }
            if (renormalize) {
                for (int j = 0; j < k; j++) {
                    gates[t][j] /= kept;
                }
            }
        }
        return HostExpertRouting.fromChoices(numExperts, chosen, gates);
    }
}
