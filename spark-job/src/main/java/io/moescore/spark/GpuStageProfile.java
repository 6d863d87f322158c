package io.moescore.spark;

import org.apache.spark.SparkConf;
import org.apache.spark.resource.ExecutorResourceRequests;
import org.apache.spark.resource.ResourceProfile;
import org.apache.spark.resource.ResourceProfileBuilder;
import org.apache.spark.resource.TaskResourceRequests;

/**
 * The resource profile of the scoring stage under stage-level scheduling ({@code RDD.withResources}): only that stage
 * asks for GPUs, so the other stages of an application run on executors or task slots without any.
 *
 * <ul>
 *   <li>{@code executorGpus > 0}: executors with that many GPUs (found by {@code
 *       spark.executor.resource.gpu.discoveryScript}), started for this stage; Spark needs dynamic allocation
 *       for that (YARN, Kubernetes, standalone).</li>
 *   <li>{@code executorGpus == 0}: the stage's tasks ask for GPUs of the executors the application already has
 *       ({@code spark.executor.resource.gpu.amount}), with no dynamic allocation (standalone, YARN, Kubernetes).</li>
 * </ul>
 */
final class GpuStageProfile {
    static final String GPU = "gpu";

    private GpuStageProfile() {
    }

    /** @throws IllegalArgumentException when the amounts cannot work with this application's conf */
    static ResourceProfile of(int executorGpus, double taskGpus, SparkConf conf) {
        if (!(taskGpus > 0)) {
            throw new IllegalArgumentException("taskGpuAmount must be more than 0, got " + taskGpus);
        }
        TaskResourceRequests tasks = new TaskResourceRequests().resource(GPU, taskGpus);
        if (executorGpus == 0) {
            long appGpus = conf.getLong("spark.executor.resource.gpu.amount", 0);
            if (appGpus < taskGpus) {
                throw new IllegalArgumentException("stage-level scheduling with executorGpuAmount 0 asks " + taskGpus
                        + " GPU per task of the application's executors, which have " + appGpus
                        + " (spark.executor.resource.gpu.amount): give executors GPUs, or set executorGpuAmount to"
                        + " start GPU executors for the scoring stage (needs spark.dynamicAllocation.enabled)");
            }
            return new ResourceProfileBuilder().require(tasks).build();
        }
        if (executorGpus < 0 || taskGpus > executorGpus) {
            throw new IllegalArgumentException("executorGpuAmount " + executorGpus + " cannot hold a task's "
                    + "taskGpuAmount " + taskGpus);
        }
        ExecutorResourceRequests executors = new ExecutorResourceRequests().resource(GPU, executorGpus,
                conf.get("spark.executor.resource.gpu.discoveryScript", ""),
                conf.get("spark.executor.resource.gpu.vendor", ""));
        return new ResourceProfileBuilder().require(executors).require(tasks).build();
    }
}
