package io.moescore.bench.spark;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.expr;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moescore.score.ScoreSettings;
import io.moescore.spark.ZeroScoreJob;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.apache.spark.sql.SparkSession;

/**
 * The scoring job's data path alone: the job with a stand-in engine ({@link ZeroScoreJob}: the same windows and
 * batches, one copy of each batch's tokens as the engine makes, scores of zero) over list&lt;int32&gt; token rows
 * as Arrow IPC and as Parquet, writing its output rows to Spark's {@code noop} sink. Reports tokens/s and tokens/s
 * per core (the local master's threads). The input is generated first (not timed): TOKENS tokens in rows of
 * ROW_TOKENS, in 2 files per core. Best and median of REPEATS runs after one warm-up run per format.
 *
 * <pre>DataPathBenchmark WORK_DIR OUT.json [tokens=100000000] [rowTokens=256] [master=local[2]] [repeats=3]</pre>
 */
public final class DataPathBenchmark {
    private DataPathBenchmark() {
    }

    public static void main(String[] args) throws IOException {
        if (args.length < 2) {
            System.err.println("usage: DataPathBenchmark WORK_DIR OUT.json [tokens=100000000] [rowTokens=256] "
                    + "[master=local[2]] [repeats=3]");
            System.exit(2);
        }
        Path work = Path.of(args[0]);
        Path out = Path.of(args[1]);
        long tokens = 100_000_000L;
        int rowTokens = 256;
        String master = "local[2]";
        int repeats = 3;
        for (int i = 2; i < args.length; i++) {
            String[] kv = args[i].split("=", 2);
            switch (kv[0]) {
                case "tokens" -> tokens = Long.parseLong(kv[1]);
                case "rowTokens" -> rowTokens = Integer.parseInt(kv[1]);
                case "master" -> master = kv[1];
                case "repeats" -> repeats = Integer.parseInt(kv[1]);
                default -> throw new IllegalArgumentException("unknown argument " + args[i]);
            }
        }
        int cores = cores(master);
        long rows = tokens / rowTokens;
        tokens = rows * rowTokens;
        Files.createDirectories(work);
        SparkSession spark = SparkSession.builder().master(master).appName("moescore data-path benchmark")
                .config("spark.ui.enabled", "false").getOrCreate();
        ObjectNode report = new ObjectMapper().createObjectNode();
        try {
            String arrow = work.resolve("tokens.arrow").toString();
            String parquet = work.resolve("tokens.parquet").toString();
            var input = spark.range(0, rows, 1, 2 * cores).select(col("id"), expr("transform(sequence(0, "
                    + (rowTokens - 1) + "), x -> cast((id * 7919 + x * 31) % 4096 as int))").as("tokens"));
            input.write().format("arrow").mode("overwrite").save(arrow);
            input.write().mode("overwrite").parquet(parquet);
            report.put("tokens", tokens).put("rows", rows).put("rowTokens", rowTokens).put("master", master)
                    .put("cores", cores).put("repeats", repeats)
                    .put("engine", "none: one copy of each batch's tokens, scores of zero (ZeroScoreJob)");
            ArrayNode results = report.putArray("results");
            for (String format : List.of("arrow", "parquet")) {
                String path = format.equals("arrow") ? arrow : parquet;
                ScoreSettings settings = ScoreSettings.DEFAULTS;
                run(spark, path, format, settings);  // warm-up
                List<Double> seconds = new ArrayList<>();
                for (int r = 0; r < repeats; r++) {
                    seconds.add(run(spark, path, format, settings));
                }
                seconds.sort(Double::compare);
                double best = seconds.get(0);
                double median = seconds.get(seconds.size() / 2);
                ObjectNode result = results.addObject();
                result.put("format", format).put("columnar", ZeroScoreJob.columnar(spark, List.of(path), format))
                        .put("bestSeconds", best).put("medianSeconds", median)
                        .put("tokensPerSecond", tokens / median)
                        .put("tokensPerSecondPerCore", tokens / median / cores);
                seconds.forEach(result.putArray("seconds")::add);
                System.out.printf("%-8s columnar=%s  median %.2f s  %.1f M tokens/s  %.1f M tokens/s per core%n",
                        format, result.get("columnar").asBoolean(), median, tokens / median / 1e6,
                        tokens / median / cores / 1e6);
            }
        } finally {
            spark.stop();
        }
        new ObjectMapper().writerWithDefaultPrettyPrinter().writeValue(out.toFile(), report);
    }

    private static double run(SparkSession spark, String path, String format, ScoreSettings settings) {
        long start = System.nanoTime();
        ZeroScoreJob.scores(spark, List.of(path), format, settings).write().format("noop").mode("overwrite").save();
        return (System.nanoTime() - start) / 1e9;
    }

    /** The threads of a local master (local[N]; local[*]: this machine's processors). */
    static int cores(String master) {
        if (master.equals("local")) {
            return 1;
        }
        if (master.startsWith("local[") && master.endsWith("]")) {
            String n = master.substring(6, master.length() - 1).split(",")[0];
            return n.equals("*") ? Runtime.getRuntime().availableProcessors() : Integer.parseInt(n);
        }
        throw new IllegalArgumentException("master " + master + ": give local[N] (the per-core rate needs N)");
    }
}
