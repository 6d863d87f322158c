package io.moescore.model;

/**
 * DeepSeek-V3's router (topk_method noaux_tc), also GLM-4.5's: sigmoid scores, a per-expert correction bias added
 * for the choice only, the experts split into n_group groups of which the topk_group with the largest sum of their
 * two best corrected scores are eligible, the top-k of those chosen, weighted by their uncorrected scores
 * (renormalised where norm_topk_prob) times routed_scaling_factor.
 *
 * @param groups        n_group
 * @param topkGroups    topk_group
 * @param scalingFactor routed_scaling_factor
 */
public record GroupRouting(int groups, int topkGroups, float scalingFactor) {
    public GroupRouting {
        if (groups < 1 || topkGroups < 1 || topkGroups > groups) {
            throw new ModelFormatException("config: topk_group " + topkGroups + " must lie in [1, n_group="
                    + groups + "]");
        }
        if (!(scalingFactor > 0) || !Float.isFinite(scalingFactor)) {
            throw new ModelFormatException("config: routed_scaling_factor must be a positive number, found "
                    + scalingFactor);
        }
    }
}
