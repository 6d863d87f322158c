package io.moescore.routing;

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
        int[][] chosen = new int[rows][];
        float[][] gates = new float[rows][];
        float[] probs = new float[numExperts];
        for (int t = 0; t < rows; t++) {
            float sum = Gates.softmaxNumerators(logits, t * numExperts, numExperts, probs);
            chosen[t] = Gates.largest(probs, numExperts, k);
            gates[t] = Gates.softmaxGates(probs, sum, chosen[t], renormalize);
        }
        return HostExpertRouting.fromChoices(numExperts, chosen, gates);
    }

    /** a > b, NaN being larger than any number (equal NaNs keep the lower expert index). */
    static boolean larger(float a, float b) {
        return a > b || (Float.isNaN(a) && !Float.isNaN(b));
    }
}
