package io.moescore.spark;

import java.io.Serializable;

/**
 * What one task attempt scored, sent to the driver through an accumulator for the job summary. startNanos and
 * endNanos are System.nanoTime() of the executor's JVM: comparable among the tasks of one executor only.
 *
 * @param traceNanos time the task spent writing its routing trace ({@code --routing-trace}; 0 without)
 * @param entries    the routing entries of the engine it ran on per device, where its experts are spread over
 *                   several ({@code --devices}); null otherwise
 */
public record TaskStats(int stageId, int partitionId, int attempt, String executorId, String host, String device,
                        long rows, long errorRows, long tokens, long startNanos, long endNanos, long[][] expertLoad,
                        long traceNanos, EngineEntries entries)
        implements Serializable {
    public TaskStats(int stageId, int partitionId, int attempt, String executorId, String host, String device,
                     long rows, long errorRows, long tokens, long startNanos, long endNanos, long[][] expertLoad) {
        this(stageId, partitionId, attempt, executorId, host, device, rows, errorRows, tokens, startNanos, endNanos,
                expertLoad, 0, null);
    }

    /**
     * The routing entries (token-expert pairs) each device of an executor's engine has computed since it loaded, at
     * a task's start and at its end: the engine's counters are shared by the tasks running on it at once, so the
     * job summary takes, per engine, the earliest and the latest counts of the job's tasks ({@link JobSummary}).
     *
     * @param engine which engine: the executor and the device its first device is
     * @param before per device, at the task's start
     * @param after  per device, at its end
     */
    public record EngineEntries(String engine, long[] before, long[] after) implements Serializable {
    }
}
