package io.moescore.routing;

import java.util.Arrays;

/**
 * MiSTer's batch-level gating: one expert set for a block of token rows. With {@code blockRows} 0 the whole batch is
 * one block; otherwise each sequence of the batch is cut into consecutive blocks of {@code blockRows} of its rows
 * from its first (the last block of a sequence may be shorter), so a block never mixes sequences and a sequence's
 * routing depends on its own tokens only, whatever it is batched with. Per block, the router logits are
 * summed over its rows, s_e = sum_t z_{t,e} (in row order), and the k experts with the largest s (ties: lower expert
 * index first; NaN largest, as {@link TopKSoftmaxRouter}) take every row of the block. A row's gates follow the
 * model's softmax: gate_{t,e} = softmax(z_t)_e for the block's experts, divided by their sum where
 * {@code renormalize} (the model's norm_topk_prob).
 *
 * <p>This is the one router whose result for a token depends on other tokens: with {@code blockRows} 0, on every
 * row it was batched with (its scores then depend on batch composition; {@code --deterministic} refuses it); with a
 * block, on the other rows of its block of its own sequence (where the batch's sequences are not known,
 * {@link #route(float[], int, int)}, the batch counts as one sequence).
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
        return route(logits, rows, numExperts, new int[] {0, rows});
    }

    @Override
    public HostExpertRouting route(float[] logits, int rows, int numExperts, int[] sequenceStarts) {
        if (sequenceStarts.length < 2 || sequenceStarts[0] != 0 || sequenceStarts[sequenceStarts.length - 1] != rows) {
            throw new IllegalArgumentException("sequence starts " + Arrays.toString(sequenceStarts)
                    + " do not cover the batch's " + rows + " rows");
        }
        if (k > numExperts) {
            throw new IllegalArgumentException("batch top-" + k + " routing over " + numExperts + " experts");
        }
        int[][] chosen = new int[rows][];
        float[][] gates = new float[rows][];
        float[] summed = new float[numExperts];
        float[] probs = new float[numExperts];
        int[] starts = blockRows == 0 ? new int[] {0, rows} : sequenceStarts;
        for (int s = 0; s + 1 < starts.length; s++) {
            int end = starts[s + 1];
            int block = blockRows == 0 ? Math.max(rows, 1) : blockRows;
            for (int from = starts[s]; from < end; from += block) {
                routeBlock(logits, numExperts, from, Math.min(end, from + block), summed, probs, chosen, gates);
            }
        }
        return HostExpertRouting.fromChoices(numExperts, chosen, gates);
    }

    /** Rows {@code from .. to-1}: the k experts of their summed logits, each row's gates from its own softmax. */
    private void routeBlock(float[] logits, int numExperts, int from, int to, float[] summed, float[] probs,
                            int[][] chosen, float[][] gates) {
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
}
