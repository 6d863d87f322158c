package io.moescore.spark.sparsify;

import io.moescore.sparse.SparsityPattern;
import io.moescore.sparsify.ExpertReconstruction;
import java.io.Serializable;

/**
 * How the job prunes, as its executors need to know it: the pattern, the method (magnitude, wanda or sparsegpt)
 * and the expert reconstruction after SparseGPT (steps 0: none).
 */
public record Pruning(SparsityPattern pattern, String method, ExpertReconstruction.Options reconstruction)
        implements Serializable {
    /** Whether the calibration passes collect only each input feature's sum of squares (wanda), not whole Hessians. */
    boolean diagonalsOnly() {
        return method.equals("wanda");
    }

    /** Whether experts are reconstructed: their calibration inputs are collected, and each is solved in one task. */
    boolean reconstructs() {
        return reconstruction.steps() > 0;
    }

    /** Whether the job runs calibration passes at all (magnitude needs none). */
    boolean calibrates() {
        return !method.equals("magnitude");
    }
}
