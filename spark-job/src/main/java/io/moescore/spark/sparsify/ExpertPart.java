package io.moescore.spark.sparsify;

import java.io.Serializable;

/**
 * The key of what a calibration task hands the shuffle for one expert: a band of one of its Hessians' exact sums
 * ({@link HessianBlock}, the value a {@code long[]}), or one calibration sequence's inputs to it ({@link Inputs}, the
 * value an {@code ExpertInputs.Chunk}). {@link ExpertPartitioner} sends each to its expert's task.
 */
public sealed interface ExpertPart extends Serializable permits HessianBlock, ExpertPart.Inputs {
    int layer();

    int expert();

    /** The key of one sequence's inputs to an expert, for its reconstruction. */
    record Inputs(int layer, int expert) implements ExpertPart {
    }
}
