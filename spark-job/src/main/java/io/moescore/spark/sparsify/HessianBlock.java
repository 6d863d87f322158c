package io.moescore.spark.sparsify;

import io.moescore.sparsify.ExpertHessians;
import java.io.Serializable;

/**
 * A band of rows of one expert projection's Hessian, the key its partial sums travel under from the calibration
 * tasks to the task that solves that expert: rows {@code firstRow ..} of the [cols, cols] matrix of
 * (layer, expert, input). Bands keep each shuffled record at most {@link #BAND_BYTES}, whatever the Hessian's size.
 */
public record HessianBlock(int layer, int expert, String input, int cols, int firstRow) implements Serializable {
    static final long BAND_BYTES = 16L << 20;

    /** Rows per band of a Hessian with this many columns. */
    static int bandRows(int cols) {
        return (int) Math.max(1, Math.min(cols, BAND_BYTES / ((long) cols * Double.BYTES)));
    }

    public boolean sameHessian(HessianBlock other) {
        return layer == other.layer && expert == other.expert && input.equals(other.input);
    }

    public ExpertHessians.Key hessian() {
        return new ExpertHessians.Key(layer, expert, input);
    }
}
