package io.moescore.spark.sparsify;

import java.io.Serializable;
import java.util.List;

/**
 * What a solve task made of one expert (solving per Hessian: of one of its projection inputs): its pruned weights
 * and, to reconstruct it, its calibration inputs [tokens, hidden] (null, 0 otherwise). Reconstructing jobs persist
 * these on the executors (memory, spilling to local disk) between the solve and reconstruction stages.
 */
record SolvedExpert(int layer, int expert, List<PrunedWeight> weights, float[] inputs, int tokens)
        implements Serializable {
}
