package io.moescore.backend;

/**
 * The head geometry of one attention op: q and k heads of {@code qkHeadDim} columns, v and output heads of
 * {@code vHeadDim} (different under DeepSeek's latent attention), grouped-query sharing of numKvHeads k/v heads,
 * and the softmax scale of q.k.
 */
public record AttentionHeads(int numHeads, int numKvHeads, int qkHeadDim, int vHeadDim, double scale) {
    public AttentionHeads {
        if (numHeads < 1 || numKvHeads < 1 || numHeads % numKvHeads != 0 || qkHeadDim < 1 || vHeadDim < 1
                || !(scale > 0) || Double.isInfinite(scale)) {
            throw new IllegalArgumentException("attention heads " + numHeads + "/" + numKvHeads + " x " + qkHeadDim
                    + " (v " + vHeadDim + "), scale " + scale);
        }
    }

    /** Heads of one width with the usual 1/sqrt(head_dim) scale. */
    public static AttentionHeads standard(int numHeads, int numKvHeads, int headDim) {
        return new AttentionHeads(numHeads, numKvHeads, headDim, headDim, 1.0 / Math.sqrt(headDim));
    }

    /** Whether these are {@link #standard} heads: one width, scale 1/sqrt(head_dim). */
    public boolean isStandard() {
        return qkHeadDim == vHeadDim && scale == 1.0 / Math.sqrt(qkHeadDim);
    }
}
