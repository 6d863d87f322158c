package io.moescore.spark.sparsify;

import java.io.Serializable;

/**
 * What one calibration task attempt did, for progress and the summary: sequences and tokens run through the
 * model (skipped: sequences the engine refused, e.g. longer than the model's positions), and when, in wall-clock
 * milliseconds.
 */
public record CalibrationStats(int stageId, int partitionId, int attempt, String executorId, String device,
                               long sequences, long skipped, long tokens, long startMillis, long endMillis)
        implements Serializable {
}
