package io.moescore.bench.portability;

import java.io.Serializable;

/**
 * A place the job wants one benchmark task: an executor (by id and host, which is also the task's preferred
 * location), and which of its GPU slots. {@code gpuSlot} is only an index for scheduling: the device a task
 * benchmarks is the GPU address Spark assigns it.
 */
public record BenchmarkSlot(String executorId, String host, int gpuSlot) implements Serializable {
    /** Spark's location string for "this executor" (ExecutorCacheTaskLocation: executor_HOST_ID). */
    String preferredLocation() {
        return "executor_" + host + "_" + executorId;
    }
}
