package io.moescore.bench.spark;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moescore.spark.sparsify.SparsifyJob;
import io.moescore.spark.sparsify.SparsifyOptions;
import io.moescore.spark.sparsify.SparsifySummary;
import io.moescore.score.ScoreSettings;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.function.ToDoubleFunction;
import org.apache.spark.sql.SparkSession;

/**
 * The sparsify job's speed on one executor and on two: calibration tokens/s (the pass's tokens over the span of its
 * calibration tasks), SparseGPT solve seconds per expert (gate, up and down, as the solve tasks timed them) and,
 * with {@code reconstructSteps}, the expert reconstruction's seconds (from the first reconstruction task's start to
 * the last one's end), each the median of {@code repeats} runs after a warm-up run that loads the model into the
 * executors. One Spark
 * application per executor count on the cluster spark-submit names (spark.cores.max = executors x executorCores);
 * {@code bench/sparsify-scale.sh} starts a two-worker standalone cluster on this host and runs it.
 *
 * <pre>SparsifyJobBenchmark MODEL_DIR CALIBRATION.jsonl WORK_DIR OUT.json [backend=cpu] [executorCores=1]
 *     [executorMemory=2g] [gpu=false] [partitions=8] [batchTokens=8192] [repeats=2] [sequential=false] [reconstructSteps=0]</pre>
 */
public final class SparsifyJobBenchmark {
    private SparsifyJobBenchmark() {
    }

    public static void main(String[] args) throws IOException {
        if (args.length < 4) {
            System.err.println("usage: SparsifyJobBenchmark MODEL_DIR CALIBRATION.jsonl WORK_DIR OUT.json "
                    + "[backend=cpu] [executorCores=1] [executorMemory=2g] [gpu=false] [partitions=8] "
                    + "[batchTokens=8192] [repeats=2] [sequential=false] [reconstructSteps=0]");
            System.exit(2);
        }
        String model = Path.of(args[0]).toAbsolutePath().toString();
        String calibration = Path.of(args[1]).toAbsolutePath().toString();
        Path work = Path.of(args[2]).toAbsolutePath();
        Path out = Path.of(args[3]);
        String backend = "cpu";
        int cores = 1;
        String memory = "2g";
        boolean gpu = false;
        int partitions = 8;
        int batchTokens = ScoreSettings.DEFAULTS.batchTokens();
        int repeats = 2;
        boolean sequential = false;
        int reconstructSteps = 0;
        for (int i = 4; i < args.length; i++) {
            String[] kv = args[i].split("=", 2);
            switch (kv[0]) {
                case "backend" -> backend = kv[1];
                case "executorCores" -> cores = Integer.parseInt(kv[1]);
                case "executorMemory" -> memory = kv[1];
                case "gpu" -> gpu = Boolean.parseBoolean(kv[1]);
                case "partitions" -> partitions = Integer.parseInt(kv[1]);
                case "batchTokens" -> batchTokens = Integer.parseInt(kv[1]);
                case "repeats" -> repeats = Integer.parseInt(kv[1]);
                case "sequential" -> sequential = Boolean.parseBoolean(kv[1]);
                case "reconstructSteps" -> reconstructSteps = Integer.parseInt(kv[1]);
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        Files.createDirectories(work);
        ObjectMapper json = new ObjectMapper();
        ObjectNode root = json.createObjectNode();
        root.put("model", args[0]);
        root.put("calibration", args[1]);
        root.put("backend", backend);
        root.put("sequential", sequential);
        root.put("reconstruct_steps", reconstructSteps);
        root.put("executor_cores", cores);
        root.put("executor_memory", memory);
        root.put("partitions", partitions);
        root.put("batch_tokens", batchTokens);
        root.put("repeats", repeats);
        root.put("host_cpus", Runtime.getRuntime().availableProcessors());
        ArrayNode runs = root.putArray("runs");
        double[] tokensPerSecond = new double[2];
        double[] reconstructionSeconds = new double[2];
        for (int executors = 1; executors <= 2; executors++) {
            SparkSession.Builder b = SparkSession.builder().appName("moescore sparsify benchmark, " + executors
                            + " executor(s)")
                    .config("spark.cores.max", Integer.toString(executors * cores))
                    .config("spark.executor.cores", Integer.toString(cores))
                    .config("spark.executor.memory", memory)
                    .config("spark.scheduler.minRegisteredResourcesRatio", "1.0")
                    .config("spark.scheduler.maxRegisteredResourcesWaitingTime", "120s")
                    .config("spark.moescore.progressSeconds", "0");
            if (gpu) {
                b.config("spark.executor.resource.gpu.amount", "1")
                        .config("spark.task.resource.gpu.amount", Double.toString(1.0 / cores));
            }
            SparkSession spark = b.getOrCreate();
            List<SparsifySummary> timed = new ArrayList<>();
            try {
                for (int r = 0; r <= repeats; r++) {
                    SparsifySummary s = SparsifyJob.run(spark, new SparsifyOptions(List.of(calibration), "json", model,
                            work.resolve("out-" + executors + "-" + r).toString(), "2:4", "sparsegpt", sequential,
                            // the executors' CPU threads = their cores (SparsifyJob.run reads these options, not
                            // spark.moescore.* conf: without this each executor used every core of the host)
                            ScoreSettings.DEFAULTS.with(ScoreSettings.BACKEND, backend)
                                    .with(ScoreSettings.BATCH_TOKENS, batchTokens)
                                    .with(ScoreSettings.CPU_THREADS, cores),
                            partitions, "tokens", "text", null, null,
                            SparsifyOptions.reconstruction(reconstructSteps)));
                    System.out.printf(Locale.ROOT, "%d executor(s), %s: %,.0f calibration tokens/s, solve %.3f s per "
                                    + "expert on average, %.1f s in all (executors %s)%n", executors,
                            r == 0 ? "warm-up" : "run " + r, s.calibrationTokensPerSecond(),
                            mean(s.solveSecondsPerExpert()), s.seconds(), s.executors());
                    if (r > 0) {
                        timed.add(s);
                    }
                }
            } finally {
                spark.stop();
            }
            SparsifySummary last = timed.get(timed.size() - 1);
            ObjectNode run = runs.addObject();
            run.put("executors", executors);
            last.executors().forEach(run.putArray("executor_ids")::add);
            last.devices().forEach(run.putArray("devices")::add);
            run.put("calibration_tokens", last.tokens());
            run.put("calibration_tokens_per_second", median(timed, SparsifySummary::calibrationTokensPerSecond));
            run.put("calibration_seconds", median(timed, SparsifySummary::calibrationSeconds));
            run.put("solve_seconds", median(timed, SparsifySummary::solveSeconds));
            run.put("experts_solved", last.solveSecondsPerExpert().length);
            run.put("solve_seconds_per_expert_mean", median(timed, s -> mean(s.solveSecondsPerExpert())));
            run.put("solve_seconds_per_expert_max",
                    median(timed, s -> Arrays.stream(s.solveSecondsPerExpert()).max().orElse(0)));
            run.put("reconstruction_seconds", median(timed, SparsifySummary::reconstructionSeconds));
            run.put("job_seconds", median(timed, SparsifySummary::seconds));
            tokensPerSecond[executors - 1] = run.get("calibration_tokens_per_second").asDouble();
            reconstructionSeconds[executors - 1] = run.get("reconstruction_seconds").asDouble();
        }
        root.put("calibration_speedup_two_over_one", tokensPerSecond[1] / tokensPerSecond[0]);
        if (reconstructSteps > 0) {
            root.put("reconstruction_speedup_two_over_one", reconstructionSeconds[0] / reconstructionSeconds[1]);
        }
        Files.createDirectories(out.toAbsolutePath().getParent());
        json.writerWithDefaultPrettyPrinter().writeValue(out.toFile(), root);
        System.out.println(root.toPrettyString());
    }

    private static double mean(double[] values) {
        return Arrays.stream(values).average().orElse(0);
    }

    private static double median(List<SparsifySummary> runs, ToDoubleFunction<SparsifySummary> value) {
        double[] v = runs.stream().mapToDouble(value).sorted().toArray();
        return v.length % 2 == 1 ? v[v.length / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
    }
}
