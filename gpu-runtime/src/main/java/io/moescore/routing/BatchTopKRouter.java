package io.moescore.routing;

import java.util.Arrays;

/**
 * MiSTer's batch-level gating: one expert set for a block of token rows. The rows of the batch are cut into
 * consecutive blocks of {@code blockRows} rows (0: the whole batch is one block); per block, the router logits are
 * summed over its rows, s_e = sum_t z_{t,e} (in row order), and the k experts with the largest s (ties: lower expert
 * index first; NaN largest, as {@link TopKSoftmaxRouter}) take every row of the block. A row's gates follow the
 * model's softmax: gate_{t,e} = softmax(z_t)_e for the block's experts, divided by their sum where
 * {@code renormalize} (the model's norm_topk_prob).
 *
 * <p>This is the one router whose result for a token depends on other tokens: with {@code blockRows} 0, on every
 * row it was batched with (its scores then depend on batch composition; {@code --deterministic} refuses it); with a
 * block, on the rows of its block, a fixed cut of the batch's rows.
 */
public record BatchTopKRouter(int k, int blockRows, boolean renormalize) implements Router {
    public BatchTopKRouter {
        if (k < 1) {
            throw new IllegalArgumentException("batch top-k must be at least 1, got " + k);
        }
        if (blockRows < 0) {
            throw new IllegalArgumentException("batch top-k's block must be 0 (the whole batch) or more rows, got "
                    + blockRows);
        }
    }

    /** Whether a token's routing depends on the whole batch it is scored in. */
    public boolean dependsOnBatch() {
        return blockRows == 0;
    }

    @Override
    public HostExpertRouting route(float[] logits, int rows, int numExperts) {
        if (k > numExperts) {
            throw new IllegalArgumentException("batch top-" + k + " routing over " + numExperts + " experts");
        }
        int block = blockRows == 0 ? Math.max(rows, 1) : blockRows;
        int[][] chosen = new int[rows][];
        float[][] gates = new float[rows][];
        float[] summed = new float[numExperts];
        float[] probs = new float[numExperts];
        for (int from = 0; from < rows; from += block) {
            int to = Math.min(rows, from + block);
            Arrays.fill(summed, 0f);
            for (int t = from; t < to; t++) {
                for (int e = 0; e < numExperts; e++) {
                    summed[e] += logits[t * numExperts + e];
                }
            }
            int[] experts = Gates.largest(summed, numExperts, k);
            for (int t = from; t < to; t++) {
                float sum = Gates.softmaxNumerators(logits, t * numExperts, numExperts, probs);
                chosen[t] = experts;
                gates[t] = Gates.softmaxGates(probs, sum, experts, renormalize);
            }
        }
        return HostExpertRouting.fromChoices(numExperts, chosen, gates);
    }
}
