package io.moescore.spark.sparsify;

import java.io.Serializable;

/** One solve task: the expert projection input whose weights it pruned, how many, in how many seconds, and when. */
public record SolveStats(int stageId, int partitionId, int attempt, String executorId, int layer, int expert,
                         String input, int weights, double seconds, long startMillis, long endMillis)
        implements Serializable {
}
