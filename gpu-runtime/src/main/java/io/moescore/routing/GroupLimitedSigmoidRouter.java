package io.moescore.routing;

import java.util.Arrays;

/**
 * DeepSeek-V3's router (topk_method noaux_tc; also GLM-4.5's), per token:
 * <ol>
 * <li>score s_e = sigmoid(logit_e); choice c_e = s_e + correctionBias_e (the bias steers the choice only);</li>
 * <li>the experts form {@code groups} consecutive groups; a group's score is the sum of its two largest c;</li>
 * <li>the {@code topkGroups} groups with the largest scores are eligible (ties: lower group first);</li>
 * <li>the k eligible experts with the largest c are chosen (ties: lower expert first);</li>
 * <li>gate_e = s_e, divided by (sum of the chosen s + 1e-20) where renormalised, times {@code scalingFactor}.</li>
 * </ol>
 * Experts outside the eligible groups are never chosen. (transformers masks them with 0.0 rather than -inf, which
 * differs only where an eligible corrected score is at most 0; DeepSeek's own inference code and vLLM use -inf.)
 *
 * <p>NaN is larger than any number, as in {@link TopKSoftmaxRouter}: a row with a NaN logit still gets k experts,
 * and the NaN reaches its gates and so its scores, which the engine flags.
 */
public record GroupLimitedSigmoidRouter(int k, int groups, int topkGroups, boolean renormalize, float scalingFactor,
                                        float[] correctionBias) implements Router {
    public GroupLimitedSigmoidRouter {
        if (k < 1 || groups < 1 || topkGroups < 1 || topkGroups > groups) {
            throw new IllegalArgumentException("top-" + k + " of " + topkGroups + " of " + groups + " groups");
        }
        correctionBias = correctionBias.clone();
    }

    @Override
    public HostExpertRouting route(float[] logits, int rows, int numExperts) {
        requireLayer(numExperts, "");
        int perGroup = numExperts / groups;
        int[][] chosen = new int[rows][k];
        float[][] gates = new float[rows][k];
        float[] score = new float[numExperts];
        float[] choice = new float[numExperts];
        float[] groupScore = new float[groups];
        boolean[] eligible = new boolean[groups];
        boolean[] taken = new boolean[numExperts];
        for (int t = 0; t < rows; t++) {
            int base = t * numExperts;
            for (int e = 0; e < numExperts; e++) {
                score[e] = 1f / (1f + (float) Math.exp(-logits[base + e]));
                choice[e] = score[e] + correctionBias[e];
            }
            for (int g = 0; g < groups; g++) {
                float first = Float.NEGATIVE_INFINITY;
                float second = Float.NEGATIVE_INFINITY;
                for (int e = g * perGroup; e < (g + 1) * perGroup; e++) {
                    if (TopKSoftmaxRouter.larger(choice[e], first)) {
                        second = first;
                        first = choice[e];
                    } else if (TopKSoftmaxRouter.larger(choice[e], second)) {
                        second = choice[e];
                    }
                }
                groupScore[g] = first + second;
            }
            Arrays.fill(eligible, false);
            for (int g : Gates.largest(groupScore, groups, topkGroups)) {
                eligible[g] = true;
            }
            Arrays.fill(taken, false);
            float sum = 0;
            for (int j = 0; j < k; j++) {
                int best = -1;
                for (int e = 0; e < numExperts; e++) {
                    if (eligible[e / perGroup] && !taken[e]
                            && (best < 0 || TopKSoftmaxRouter.larger(choice[e], choice[best]))) {
                        best = e;
                    }
                }
                taken[best] = true;
                chosen[t][j] = best;
                gates[t][j] = score[best];
                sum += score[best];
            }
            float denominator = sum + 1e-20f;
            for (int j = 0; j < k; j++) {
                float w = renormalize ? gates[t][j] / denominator : gates[t][j];
                gates[t][j] = w * scalingFactor;
            }
        }
        return HostExpertRouting.fromChoices(numExperts, chosen, gates);
    }

    /**
     * Refuses a layer of {@code numExperts} experts that does not make this router's groups (one correction bias per
     * expert, groups of at least 2, k within the eligible groups), the message after {@code prefix}; the GPU's kernel
     * checks the same.
     *
     * @throws IllegalArgumentException naming k, the groups, the experts and the biases
     */
    public void requireLayer(int numExperts, String prefix) {
        if (numExperts != correctionBias.length || numExperts % groups != 0 || numExperts / groups < 2
                || k > topkGroups * (numExperts / groups)) {
            throw new IllegalArgumentException(prefix + "top-" + k + " of " + topkGroups + " of " + groups
                    + " groups over " + numExperts + " experts with " + correctionBias.length + " correction biases");
        }
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof GroupLimitedSigmoidRouter r && k == r.k && groups == r.groups
                && topkGroups == r.topkGroups && renormalize == r.renormalize && scalingFactor == r.scalingFactor
                && Arrays.equals(correctionBias, r.correctionBias);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(correctionBias) * 31 + k;
    }

    @Override
    public String toString() {
        return "GroupLimitedSigmoidRouter(top-" + k + " of " + topkGroups + "/" + groups + " groups, scale "
                + scalingFactor + (renormalize ? ", renormalised" : "") + ")";
    }
}
