package io.moescore.spark;

import java.io.Serializable;

/** What one task attempt scored, sent to the driver through an accumulator for the job summary. */
public record TaskStats(int stageId, int partitionId, int attempt, String executorId, String host, String device,
                        long rows, long errorRows, long tokens, long nanos, long[][] expertLoad) implements Serializable {
}
