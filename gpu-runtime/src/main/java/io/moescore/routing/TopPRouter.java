package io.moescore.routing;

import java.util.Arrays;

/**
 * Nucleus (top-p) routing, per token: p = softmax(z) over all experts; the experts ranked by p (largest first, ties:
 * lower expert index first, as {@link TopKSoftmaxRouter}); the fewest m of them, {@code 1 <= m <= maxK}, whose
 * cumulative probability p_(1) + ... + p_(m) reaches {@code topP}; gate_e = p_e, divided by the sum of the m chosen
 * p where {@code renormalize} (the model's norm_topk_prob), else p_e as it is. With {@code maxK} at the model's k
 * a token never gets more experts than the model's own router gives it.
 *
 * <p>Non-finite logits route as {@link TopKSoftmaxRouter}'s do: a row without a softmax has NaN probabilities, the
 * cumulative sum never reaches {@code topP}, and the row goes to experts 0..maxK-1 with NaN gates (the NaN then
 * reaches its scores, which the engine flags).
 */
public record TopPRouter(float topP, int maxK, boolean renormalize) implements Router {
    public TopPRouter {
        if (!(topP > 0 && topP <= 1)) {
            throw new IllegalArgumentException("top-p must lie in (0, 1], got " + topP);
        }
        if (maxK < 1) {
            throw new IllegalArgumentException("top-p's largest expert count must be at least 1, got " + maxK);
        }
    }

    @Override
    public HostExpertRouting route(float[] logits, int rows, int numExperts) {
        if (maxK > numExperts) {
            throw new IllegalArgumentException("top-p routing to at most " + maxK + " of " + numExperts + " experts");
        }
        int[][] chosen = new int[rows][];
        float[][] gates = new float[rows][];
        float[] probs = new float[numExperts];
        for (int t = 0; t < rows; t++) {
            float sum = Gates.softmaxNumerators(logits, t * numExperts, numExperts, probs);
            int[] ranked = Gates.largest(probs, numExperts, maxK);
            int m = 0;
            float cumulative = 0;
            while (m < maxK) {
                cumulative += probs[ranked[m]] / sum;
                m++;
                if (cumulative >= topP) {
                    break;
                }
            }
            chosen[t] = Arrays.copyOf(ranked, m);
            gates[t] = Gates.softmaxGates(probs, sum, chosen[t], renormalize);
        }
        return HostExpertRouting.fromChoices(numExperts, chosen, gates);
    }
}
