package io.moescore.spark.sparsify;

import java.io.Serializable;

/**
 * One expert's reconstruction: its calibration tokens, the mean squared error of its sparse SwiGLU output against
 * the dense expert's on them before and after tuning, in how many seconds, where and when.
 */
public record ReconstructionStats(int stageId, int partitionId, int attempt, String executorId, int layer, int expert,
                                  int tokens, double initialError, double finalError, double seconds,
                                  long startMillis, long endMillis) implements Serializable {
}
