package io.moescore.spark.sparsify;

import io.moescore.sparse.Sparse24;
import java.io.Serializable;

/** One expert weight pruned 2:4 and packed ({@link Sparse24.Packed}), on its way from a solve task to the driver. */
public record PrunedWeight(String name, int rows, int cols, float[] values, int[] meta) implements Serializable {
    static PrunedWeight of(String name, Sparse24.Packed p) {
        return new PrunedWeight(name, p.rows(), p.cols(), p.values(), p.meta());
    }

    public Sparse24.Packed packed() {
        return new Sparse24.Packed(rows, cols, values, meta);
    }
}
