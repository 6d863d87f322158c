package io.moescore.job;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.moescore.spark.ScoringSpec;
import io.moescore.spark.StandaloneCluster;
import io.moescore.spark.TokenRows;
import io.moescore.sparse.SparsityPattern;
import io.moescore.spark.sparsify.CalibrationShuffle;
import io.moescore.spark.sparsify.CalibrationStats;
import io.moescore.spark.sparsify.ExpertPart;
import io.moescore.spark.sparsify.HessianBlock;
import io.moescore.spark.sparsify.Pruning;
import io.moescore.spark.sparsify.SparsifyJob;
import io.moescore.spark.sparsify.SparsifyOptions;
import io.moescore.spark.sparsify.SparsifySummary;
import io.moescore.sparsify.ExactGram;
import io.moescore.sparsify.ExpertHessians;
import io.moescore.sparsify.ExpertReconstruction;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.util.CollectionAccumulator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import scala.Tuple2;

/**
 * The sparsify job's Hessians (every MoE layer, expert and projection input of the demo model, 8 calibration rows,
 * CPU backend) are the same to the bit whether one task computes them all (local[1], one partition) or 8 tasks on
 * the two executors of a standalone cluster, whose partial sums the solve tasks add exactly; and the whole job,
 * solves on the executors included, writes the same checkpoint either way.
 */
class SparsifyHessiansTest {
    private static final int[] LAYERS = {0, 1, 2, 3};

    @TempDir
    Path tmp;

    @Test
    @Timeout(value = 240, unit = TimeUnit.SECONDS)
    void oneTaskAndEightTasksOnTwoExecutorsSumTheSameHessians() throws Exception {
        Path calibration = tmp.resolve("calibration.jsonl");
        Files.write(calibration, Files.readAllLines(SparkTests.repoRoot().resolve("demo/calibration.jsonl"))
                .subList(0, 8));
        Set<String> executors = new TreeSet<>();
        Map<ExpertHessians.Key, long[]> one;
        SparkSession local = SparkSession.builder().master("local[1]").appName("SparsifyHessiansTest")
                .config("spark.ui.enabled", "false").config("spark.moescore.cpuThreads", "2").getOrCreate();
        try {
            one = hessians(local, calibration, 1, executors);
            SparsifyJob.run(local, options(calibration, tmp.resolve("one"), 1));
        } finally {
            local.stop();
        }
        executors.clear();
        Map<ExpertHessians.Key, long[]> eight;
        try (StandaloneCluster cluster = StandaloneCluster.builder().workers(2).gpusPerWorker(0).coresPerWorker(1)
                .start()) {
            SparkSession.Builder b = SparkSession.builder().appName("SparsifyHessiansTest");
            cluster.applicationConf().forEach(b::config);
            b.config("spark.executor.extraJavaOptions",
                            Files.readString(SparkTests.repoRoot().resolve("conf/jvm-options")).strip())
                    .config("spark.moescore.cpuThreads", "1");
            SparkSession spark = b.getOrCreate();
            try {
                assertEquals(cluster.masterUrl(), spark.sparkContext().master(), "a session on the cluster");
                eight = hessians(spark, calibration, 8, executors);
                SparsifySummary job = SparsifyJob.run(spark, options(calibration, tmp.resolve("eight"), 8));
                assertEquals(2, job.executors().size(), "calibration and solves on both executors: " + job.executors());
            } catch (Throwable t) {
                System.err.println("SparsifyHessiansTest failed; cluster logs follow\n" + cluster.diagnostics());
                throw t;
            } finally {
                spark.stop();
            }
        }
        assertEquals(2, executors.size(), "the 8 calibration tasks ran on both executors: " + executors);
        assertFalse(one.isEmpty());
        assertEquals(new TreeSet<>(one.keySet().stream().map(Object::toString).toList()),
                new TreeSet<>(eight.keySet().stream().map(Object::toString).toList()), "the same experts reached");
        for (Map.Entry<ExpertHessians.Key, long[]> e : one.entrySet()) {
            assertArrayEquals(e.getValue(), eight.get(e.getKey()), e.getKey() + ": the same exact sum");
        }
        System.out.printf("%d Hessians, the same to the bit from 1 and 8 partitions%n", one.size());
        SparseCheckpoints.assertSame(tmp.resolve("one"), tmp.resolve("eight"));
    }

    private static SparsifyOptions options(Path calibration, Path out, int partitions) {
        return new SparsifyOptions(List.of(calibration.toString()), "json", SparkTests.demoModel().toString(),
                out.toString(), "2:4", "sparsegpt", false, SparkTests.cpu(), partitions, "tokens", "text", null, null);
    }

    /** The job's summed Hessians (exact sums), assembled from their bands; adds the executors that ran calibration tasks. */
    private static Map<ExpertHessians.Key, long[]> hessians(SparkSession spark, Path calibration, int partitions,
                                                            Set<String> executors) {
        ScoringSpec spec = new ScoringSpec(SparkTests.demoModel().toString(), SparkTests.cpu(), "tokens", "text",
                Map.of());
        CollectionAccumulator<CalibrationStats> stats = spark.sparkContext().collectionAccumulator("calibration");
        JavaPairRDD<Long, int[]> rows = TokenRows.readNumbered(spark, List.of(calibration.toString()), "json", spec,
                partitions, spark.sparkContext().longAccumulator("skipped"));
        assertEquals(partitions, rows.getNumPartitions());
        Map<ExpertHessians.Key, long[]> out = new HashMap<>();
        Pruning pruning = new Pruning(SparsityPattern.TWO_FOUR, "sparsegpt", ExpertReconstruction.Options.NONE);
        for (Tuple2<ExpertPart, Object> part : CalibrationShuffle.of(rows, spec, LAYERS, 8, pruning, null, stats)
                .collect()) {
            HessianBlock k = (HessianBlock) part._1();
            long[] h = out.computeIfAbsent(k.hessian(), key -> ExactGram.zeros(k.cols()));
            ExactGram.add(h, k.firstEntry(), (long[]) part._2());
        }
        List<CalibrationStats> tasks = stats.value();
        assertEquals(partitions, tasks.size(), "one calibration task per partition");
        assertEquals(8 * 256, tasks.stream().mapToLong(CalibrationStats::tokens).sum());
        tasks.forEach(t -> executors.add(t.executorId()));
        assertNotNull(out);
        return out;
    }
}
