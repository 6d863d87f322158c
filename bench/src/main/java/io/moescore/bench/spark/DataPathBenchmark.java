package io.moescore.bench.spark;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.expr;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moescore.score.ScoreSettings;
import io.moescore.spark.ScoreJobOptions;
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
 * as Arrow IPC and as Parquet, writing its output rows to Spark's {@code noop} sink ("input" results). Then the output
 * ("output" results): the Arrow input scored and written as Arrow IPC, Parquet and JSON lines by Spark's row writer
 * ({@code --output-writer rows}, before) and by the direct writers ({@code vectors}, after), with the default
 * columns and with per-token log-probs; the output's own rate is the tokens over the time past the same run into
 * the noop sink. Reports tokens/s and tokens/s per core (the local master's threads), and the host copies of each
 * per-token output value between the engine's array and the file (from the code path: see {@link #COPIES}). The
 * input is generated first (not timed): TOKENS tokens in rows of ROW_TOKENS, in 2 files per core. Best and median of
 * REPEATS runs after one warm-up run each.
 *
 * <pre>DataPathBenchmark WORK_DIR OUT.json [tokens=100000000] [rowTokens=256] [master=local[2]] [repeats=3]
 * [outputs=true]</pre>
 */
public final class DataPathBenchmark {
    private DataPathBenchmark() {
    }

    /** One timed input: its name in the report, its files, the format they are read as. */
    private record Input(String label, String path, String format) {
    }

    public static void main(String[] args) throws IOException {
        if (args.length < 2) {
            System.err.println("usage: DataPathBenchmark WORK_DIR OUT.json [tokens=100000000] [rowTokens=256] "
                    + "[master=local[2]] [repeats=3] [outputs=true]");
            System.exit(2);
        }
        Path work = Path.of(args[0]);
        Path out = Path.of(args[1]);
        long tokens = 100_000_000L;
        int rowTokens = 256;
        String master = "local[2]";
        int repeats = 3;
        boolean outputs = true;
        for (int i = 2; i < args.length; i++) {
            String[] kv = args[i].split("=", 2);
            switch (kv[0]) {
                case "tokens" -> tokens = Long.parseLong(kv[1]);
                case "rowTokens" -> rowTokens = Integer.parseInt(kv[1]);
                case "master" -> master = kv[1];
                case "repeats" -> repeats = Integer.parseInt(kv[1]);
                case "outputs" -> outputs = Boolean.parseBoolean(kv[1]);
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
            // int64 token lists (Polars' and pandas' default integer) take the engine's packing path, not the view
            String arrow64 = work.resolve("tokens64.arrow").toString();
            input.write().format("arrow").mode("overwrite").save(arrow);
            input.write().mode("overwrite").parquet(parquet);
            input.select(col("id"), col("tokens").cast("array<bigint>").as("tokens")).write().format("arrow")
                    .mode("overwrite").save(arrow64);
            report.put("tokens", tokens).put("rows", rows).put("rowTokens", rowTokens).put("master", master)
                    .put("cores", cores).put("repeats", repeats)
                    .put("engine", "none: one copy of each batch's tokens, scores of zero (ZeroScoreJob)");
            report.put("loadAverageBefore", loadAverage());
            ArrayNode results = report.putArray("results");
            for (Input in : List.of(new Input("arrow", arrow, "arrow"), new Input("parquet", parquet, "parquet"),
                    new Input("arrow-int64", arrow64, "arrow"))) {
                ObjectNode result = results.addObject();
                double median = time(result, repeats, tokens, cores,
                        () -> run(spark, in.path(), in.format(), ScoreSettings.DEFAULTS));
                result.put("format", in.label()).put("columnar",
                        ZeroScoreJob.columnar(spark, List.of(in.path()), in.format()));
                System.out.printf("input %-11s columnar=%s  median %.2f s  %.1f M tokens/s  %.1f M tokens/s per "
                        + "core%n", in.label(), result.get("columnar").asBoolean(), median, tokens / median / 1e6,
                        tokens / median / cores / 1e6);
            }
            ArrayNode outputResults = report.putArray("output");
            for (boolean tokenLogProbs : outputs ? List.of(false, true) : List.<Boolean>of()) {
                ScoreSettings settings = ScoreSettings.DEFAULTS.with(ScoreSettings.TOKEN_LOGPROBS, tokenLogProbs);
                ObjectNode noop = outputResults.addObject();
                double noopMedian = time(noop, repeats, tokens, cores, () -> run(spark, arrow, "arrow", settings));
                noop.put("format", "noop").put("tokenLogProbs", tokenLogProbs);
                for (String format : List.of("arrow", "parquet", "json")) {
                    for (ScoreJobOptions.OutputWriter writer : ScoreJobOptions.OutputWriter.values()) {
                        String target = work.resolve("out-" + format + "-" + writer).toString();
                        ObjectNode result = outputResults.addObject();
                        double median = time(result, repeats, tokens, cores, () -> write(spark, arrow, settings, target,
                                format, writer));
                        double outputSeconds = Math.max(median - noopMedian, 1e-9);
                        String name = writer.name().toLowerCase(java.util.Locale.ROOT);
                        result.put("format", format).put("writer", name).put("tokenLogProbs", tokenLogProbs)
                                .put("outputSeconds", outputSeconds)
                                .put("outputTokensPerSecondPerCore", tokens / outputSeconds / cores)
                                .put("hostCopiesPerTokenValue", tokenLogProbs ? COPIES.get(writer).get(format) : 0)
                                .put("outputBytes", bytes(Path.of(target)));
                        System.out.printf("output %-8s %-7s logprobs=%-5s median %.2f s (noop %.2f)  %.1f M tokens/s "
                                + "per core end to end, output alone %.1f M tokens/s per core%n", format, name,
                                tokenLogProbs, median, noopMedian, tokens / median / cores / 1e6,
                                tokens / outputSeconds / cores / 1e6);
                    }
                }
            }
            report.put("loadAverageAfter", loadAverage());
        } finally {
            spark.stop();
        }
        new ObjectMapper().writerWithDefaultPrettyPrinter().writeValue(out.toFile(), report);
    }

    /**
     * Host copies of each per-token output value (a token log-prob) from the engine's float[] into the file's bytes:
     * both writers first copy it into the score vectors (ScoreVectors). The row writer's plan then projects each row
     * into an UnsafeRow (1), and the format writer encodes it (Parquet's page buffer, JSON text: 1) or, for Arrow,
     * copies it into Spark's own Arrow vectors (ArrowWriter, 1) and those into the stream (1). The direct writers
     * encode from the score vectors (1) or write their buffers to the stream (1).
     */
    static final java.util.Map<ScoreJobOptions.OutputWriter, java.util.Map<String, Integer>> COPIES = java.util.Map.of(
            ScoreJobOptions.OutputWriter.ROWS, java.util.Map.of("arrow", 4, "parquet", 3, "json", 3),
            ScoreJobOptions.OutputWriter.VECTORS, java.util.Map.of("arrow", 2, "parquet", 2, "json", 2));

    /** Runs {@code job} once to warm up, then {@code repeats} times; records the times and rates; the median. */
    private static double time(ObjectNode result, int repeats, long tokens, int cores, Timed job) {
        job.seconds();
        List<Double> seconds = new ArrayList<>();
        for (int r = 0; r < repeats; r++) {
            seconds.add(job.seconds());
        }
        seconds.sort(Double::compare);
        double median = seconds.get(seconds.size() / 2);
        result.put("bestSeconds", seconds.get(0)).put("medianSeconds", median)
                .put("tokensPerSecond", tokens / median).put("tokensPerSecondPerCore", tokens / median / cores);
        seconds.forEach(result.putArray("seconds")::add);
        return median;
    }

    private interface Timed {
        double seconds();
    }

    private static double write(SparkSession spark, String input, ScoreSettings settings, String out, String format,
                                ScoreJobOptions.OutputWriter writer) {
        long start = System.nanoTime();
        ZeroScoreJob.write(spark, List.of(input), "arrow", settings, out, format, writer);
        return (System.nanoTime() - start) / 1e9;
    }

    private static long bytes(Path dir) {
        try (var files = Files.walk(dir)) {
            return files.filter(Files::isRegularFile).mapToLong(p -> p.toFile().length()).sum();
        } catch (IOException e) {
            return -1;
        }
    }

    /** The 1-minute load average (this machine is shared), or -1. */
    private static double loadAverage() {
        return java.lang.management.ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage();
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
