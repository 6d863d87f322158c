package io.moescore.spark;

import java.io.Serializable;

/**
 * What one task attempt scored, sent to the driver through an accumulator for the job summary. startNanos and
 * endNanos are System.nanoTime() of the executor's JVM: comparable among the tasks of one executor only.
 *
 * @param traceNanos time the task spent writing its routing trace ({@code --routing-trace}; 0 without)
 */
public record TaskStats(int stageId, int partitionId, int attempt, String executorId, String host, String device,
                        long rows, long errorRows, long tokens, long startNanos, long endNanos, long[][] expertLoad,
                        long traceNanos)
        implements Serializable {
    public TaskStats(int stageId, int partitionId, int attempt, String executorId, String host, String device,
                     long rows, long errorRows, long tokens, long startNanos, long endNanos, long[][] expertLoad) {
        this(stageId, partitionId, attempt, executorId, host, device, rows, errorRows, tokens, startNanos, endNanos,
                expertLoad, 0);
    }
}
