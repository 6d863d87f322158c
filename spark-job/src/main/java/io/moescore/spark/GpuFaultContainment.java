package io.moescore.spark;

import io.moescore.backend.GpuFaultException;
import org.apache.spark.SparkEnv;
import org.apache.spark.executor.CoarseGrainedExecutorBackend;
import org.apache.spark.executor.ExecutorBackend;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import scala.Option;

/**
 * What a task does when the executor's GPU fails beyond recovery (a {@link GpuFaultException}: illegal address,
 * launch failure, uncorrectable ECC error). The runtime is already marked broken, so the executor's other tasks
 * fail at once naming the same error and nothing more runs on that context. On a cluster executor the JVM then
 * exits (after {@link #EXIT_DELAY_MILLIS}, so the task's own failure reaches the driver first), telling the driver
 * why: Spark reschedules its work on the other executors, and the cluster manager may start a fresh executor with
 * a fresh context. In local mode the executor is the driver, which stays: the job fails naming the error.
 */
public final class GpuFaultContainment {
    /** The executor's exit code after a GPU fault (70: sysexits' EX_SOFTWARE). */
    public static final int EXIT_GPU_FAULT = 70;
    static final long EXIT_DELAY_MILLIS = 2000;
    private static final Logger LOG = LoggerFactory.getLogger(GpuFaultContainment.class);

    private GpuFaultContainment() {
    }

    /** Starts the executor's exit where there is one to exit; returns the exception for the task to throw. */
    public static GpuFaultException contain(GpuFaultException fault) {
        LOG.error("moescore: GPU fault on this executor: {}", fault.getMessage());
        SparkEnv env = SparkEnv.get();
        Option<ExecutorBackend> backend = env == null ? Option.empty() : env.executorBackend();
        if (backend.isDefined() && backend.get() instanceof CoarseGrainedExecutorBackend executor) {
            Thread exit = new Thread(() -> {
                try {
                    Thread.sleep(EXIT_DELAY_MILLIS);
                } catch (InterruptedException ignored) {
                    Thread.currentThread().interrupt();
                }
                executor.exitExecutor(EXIT_GPU_FAULT, "moescore: " + fault.getMessage(), fault, true);
            }, "moescore-gpu-fault-exit");
            exit.setDaemon(true);
            exit.start();
        }
        return fault;
    }
}
