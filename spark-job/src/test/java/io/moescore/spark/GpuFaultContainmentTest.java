package io.moescore.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.moescore.backend.GpuFaultException;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.apache.spark.SparkException;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerExecutorRemoved;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A GPU fault in a task ({@link GpuFaultContainment}): on a cluster the executor exits and tells the driver the CUDA
 * error, and Spark finishes the job on the other executor; in local mode the job fails naming it. The fault is a
 * {@link GpuFaultException} thrown where PartitionScorer meets one (no GPU here: the CUDA side is CudaFaultTest).
 */
class GpuFaultContainmentTest {
    private static final String CUDA_ERROR = "CUDA_ERROR_ILLEGAL_ADDRESS";

    /** Runs on an executor: the first attempt of partition 0 meets a GPU fault. */
    static String faultOnFirstAttemptOfPartitionZero(int partition) throws InterruptedException {
        if (partition == 0 && TaskContext.get().attemptNumber() == 0) {
            throw GpuFaultContainment.contain(new GpuFaultException("CUDA device 0 (simulated): " + CUDA_ERROR
                    + " in experts; the device's context is unusable for the rest of this process"));
        }
        Thread.sleep(300);
        return partition + "|" + ProcessHandle.current().pid();
    }

    @Test
    @Timeout(value = 180, unit = TimeUnit.SECONDS)
    void onAClusterTheExecutorExitsAndTheJobFinishesElsewhere() throws Exception {
        try (StandaloneCluster cluster = StandaloneCluster.builder().workers(2).gpusPerWorker(1).coresPerWorker(1)
                .start()) {
            SparkSession spark = null;
            try {
                SparkSession.Builder b = SparkSession.builder().appName("GpuFaultContainmentTest");
                cluster.applicationConf().forEach(b::config);
                b.config("spark.executor.resource.gpu.amount", "1").config("spark.task.resource.gpu.amount", "1")
                        .config("spark.executor.cores", "1");
                spark = b.getOrCreate();
                List<String> removed = new CopyOnWriteArrayList<>();
                spark.sparkContext().addSparkListener(new SparkListener() {
                    @Override
                    public void onExecutorRemoved(SparkListenerExecutorRemoved event) {
                        removed.add(event.executorId() + ": " + event.reason());
                    }
                });
                JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
                List<Integer> partitions = IntStream.range(0, 8).boxed().collect(Collectors.toList());
                List<String> results = jsc.parallelize(partitions, 8)
                        .map(GpuFaultContainmentTest::faultOnFirstAttemptOfPartitionZero).collect();
                assertEquals(Set.of(0, 1, 2, 3, 4, 5, 6, 7), results.stream()
                        .map(r -> Integer.parseInt(r.split("\\|")[0])).collect(Collectors.toSet()));
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
                while (removed.isEmpty() && System.nanoTime() < deadline) {
                    Thread.sleep(200);
                }
                System.out.println("executors removed: " + removed);
                assertTrue(removed.stream().anyMatch(r -> r.contains(CUDA_ERROR)),
                        "an executor left naming the CUDA error: " + removed);
            } catch (Throwable t) {
                System.err.println("GpuFaultContainmentTest failed; cluster logs follow\n" + cluster.diagnostics());
                throw t;
            } finally {
                if (spark != null) {
                    spark.stop();
                }
                SparkSession.clearActiveSession();
                SparkSession.clearDefaultSession();
            }
        }
    }

    @Test
    void inLocalModeTheJobFailsNamingTheCudaError() {
        SparkSession spark = SparkSession.builder().master("local[2]").appName("GpuFaultContainmentTest")
                .config("spark.ui.enabled", "false").getOrCreate();
        try {
            JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
            SparkException e = assertThrows(SparkException.class, () -> jsc.parallelize(List.of(0, 1), 2)
                    .map(GpuFaultContainmentTest::faultOnFirstAttemptOfPartitionZero).collect());
            assertTrue(e.getMessage().contains(CUDA_ERROR), e.getMessage());
        } finally {
            spark.stop();
        }
    }
}
