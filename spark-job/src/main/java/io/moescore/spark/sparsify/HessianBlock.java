package io.moescore.spark.sparsify;

import io.moescore.sparsify.ExactGram;
import io.moescore.sparsify.ExpertHessians;

/**
 * A band of one expert projection's Hessian, the key its partial sums travel under from the calibration tasks to
 * the task that solves that expert: entries {@code firstEntry ..} of the exact sum ({@link ExactGram}) of
 * (layer, expert, input), whose matrix is [cols, cols] (its packed upper triangle; for wanda's diagonals, cols
 * entries). Bands keep each shuffled record at most {@link #BAND_BYTES}, whatever the Hessian's size.
 */
public record HessianBlock(int layer, int expert, String input, int cols, int firstEntry) implements ExpertPart {
    static final long BAND_BYTES = 16L << 20;

    /** Rows of the triangle per band of a Hessian with this many columns (a row: at most cols entries of 16 bytes). */
    static int bandRows(int cols) {
        return (int) Math.max(1, Math.min(cols, BAND_BYTES / ((long) cols * 16)));
    }

    public boolean sameHessian(HessianBlock other) {
        return layer == other.layer && expert == other.expert && input.equals(other.input);
    }

    public ExpertHessians.Key hessian() {
        return new ExpertHessians.Key(layer, expert, input);
    }
}
