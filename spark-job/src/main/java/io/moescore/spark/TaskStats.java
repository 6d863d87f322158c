package io.moescore.spark;

import java.io.Serializable;

/**
 * What one task attempt scored, sent to the driver through an accumulator for the job summary. startNanos and
 * endNanos are System.nanoTime() of the executor's JVM: comparable among the tasks of one executor only.
 */
public record TaskStats(int stageId, int partitionId, int attempt, String executorId, String host, String device,
                        long rows, long errorRows, long tokens, long startNanos, long endNanos, long[][] expertLoad)
        implements Serializable {
}
