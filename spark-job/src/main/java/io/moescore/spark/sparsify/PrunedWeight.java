package io.moescore.spark.sparsify;

import io.moescore.sparse.Sparse24;
import io.moescore.sparse.SparsityPattern;
import io.moescore.sparse.VectorSparse;
import java.io.Serializable;

/**
 * One expert weight pruned to a pattern and packed, fp32 values (so unpacking gives back the pruned weight to the
 * bit), on its way between executors and to the driver: 2:4 as {@link Sparse24.Packed} ({@code keep} null), 128:2:8
 * as {@link VectorSparse.Packed} (the condensed matrix's values and metadata, and the row choices).
 */
public record PrunedWeight(String name, int rows, int cols, float[] values, int[] meta, byte[] keep)
        implements Serializable {
    static PrunedWeight of(String name, SparsityPattern pattern, float[] pruned, int rows, int cols) {
        if (pattern == SparsityPattern.TWO_FOUR) {
            Sparse24.Packed p = Sparse24.pack(pruned, rows, cols);
            return new PrunedWeight(name, rows, cols, p.values(), p.meta(), null);
        }
        VectorSparse.Packed p = VectorSparse.pack(pruned, rows, cols);
        return new PrunedWeight(name, rows, cols, p.condensed().values(), p.condensed().meta(), p.keep());
    }

    /** The pruned weight [rows, cols], zeros included. */
    public float[] dense() {
        if (keep == null) {
            return Sparse24.decompress(new Sparse24.Packed(rows, cols, values, meta));
        }
        return VectorSparse.decompress(new VectorSparse.Packed(rows, cols, keep,
                new Sparse24.Packed(rows / 2, cols, values, meta)));
    }
}
