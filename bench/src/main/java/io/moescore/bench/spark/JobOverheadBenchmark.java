package io.moescore.bench.spark;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moescore.engine.Engine;
import io.moescore.score.LocalScoreOptions;
import io.moescore.score.LocalScorer;
import io.moescore.spark.ExecutorEngines;
import io.moescore.spark.MoeScoreJob;
import io.moescore.spark.ScoreJobOptions;
import io.moescore.spark.ScoringSpec;
import io.moescore.backend.Precision;
import io.moescore.score.ScoreSettings;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.apache.spark.sql.SparkSession;

/**
 * The same scoring work through the single-process scorer and through the Spark job on one GPU, in one JVM:
 * the job's executor is this JVM (local mode), so both use the very same loaded engine and the comparison is
 * the job's own cost (Spark's planning, reading, batching, writing) against a plain loop over the rows.
 * Medians of alternating repeats after a warm-up of each.
 *
 * <pre>JobOverheadBenchmark MODEL_DIR WORK_DIR OUT.json [rows=512] [seq=512] [master=local[2]] [precision=bf16]
 *     [batchTokens=8192] [repeats=3]</pre>
 */
public final class JobOverheadBenchmark {
    private JobOverheadBenchmark() {
    }

    public static void main(String[] args) throws IOException {
        if (args.length < 3) {
            System.err.println("usage: JobOverheadBenchmark MODEL_DIR WORK_DIR OUT.json [rows=512] [seq=512] "
                    + "[master=local[2]] [precision=bf16] [batchTokens=8192] [repeats=3]");
            System.exit(2);
        }
        Path model = Path.of(args[0]);
        Path work = Path.of(args[1]);
        Path out = Path.of(args[2]);
        int rows = 512;
        int seq = 512;
        String master = "local[2]";
        String precision = "bf16";
        int batchTokens = ScoreSettings.DEFAULTS.batchTokens();
        int repeats = 3;
        for (int i = 3; i < args.length; i++) {
            String[] kv = args[i].split("=", 2);
            switch (kv[0]) {
                case "rows" -> rows = Integer.parseInt(kv[1]);
                case "seq" -> seq = Integer.parseInt(kv[1]);
                case "master" -> master = kv[1];
                case "precision" -> precision = kv[1];
                case "batchTokens" -> batchTokens = Integer.parseInt(kv[1]);
                case "repeats" -> repeats = Integer.parseInt(kv[1]);
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        Files.createDirectories(work);
        SparkSession spark = SparkSession.builder().master(master).appName("moescore job overhead")
                .config("spark.ui.enabled", "false").getOrCreate();
        try {
            ScoreSettings settings = ScoreSettings.DEFAULTS.with(ScoreSettings.BACKEND, "cuda")
                    .with(ScoreSettings.PRECISION, Precision.parse(precision))
                    .with(ScoreSettings.BATCH_TOKENS, batchTokens);
            ScoringSpec spec = new ScoringSpec(model.toString(), settings, "tokens", "text", Map.of());
            Engine engine = ExecutorEngines.get(spec, 0).engine();
            Path jsonl = work.resolve("input.jsonl");
            writeRandomRows(jsonl, rows, seq, engine.config().vocabSize());
            String parquet = work.resolve("input.parquet").toString();
            spark.read().json(jsonl.toString()).write().mode("overwrite").parquet(parquet);
            long tokens = (long) rows * seq;

            LocalScorer local = new LocalScorer(new PrintStream(OutputStream.nullOutputStream()));
            LocalScoreOptions localOptions = new LocalScoreOptions(model, jsonl, work.resolve("local.jsonl"), true,
                    settings.with(ScoreSettings.CPU_THREADS, 1));  // each repeat replaces the last
            ScoreJobOptions jsonJob = job(jsonl.toString(), "json", work, model, settings);
            ScoreJobOptions parquetJob = job(parquet, "parquet", work, model, settings);
            List<Double> localSeconds = new ArrayList<>();
            List<Double> jsonSeconds = new ArrayList<>();
            List<Double> parquetSeconds = new ArrayList<>();
            for (int r = 0; r <= repeats; r++) {  // r == 0: warm-up
                double l = time(() -> local.score(engine, localOptions));
                double j = time(() -> MoeScoreJob.score(spark, jsonJob));
                double p = time(() -> MoeScoreJob.score(spark, parquetJob));
                System.out.printf("%s: single process %.2f s, job (json) %.2f s, job (parquet) %.2f s%n",
                        r == 0 ? "warm-up" : "repeat " + r, l, j, p);
                if (r > 0) {
                    localSeconds.add(l);
                    jsonSeconds.add(j);
                    parquetSeconds.add(p);
                }
            }
            ObjectNode root = new ObjectMapper().createObjectNode();
            root.put("model", model.toString());
            root.put("config", engine.config().toString());
            root.put("device", engine.backend().deviceName());
            root.put("master", master);
            root.put("precision", precision);
            root.put("rows", rows);
            root.put("tokens", tokens);
            root.put("batch_tokens", batchTokens);
            root.put("single_process_seconds", median(localSeconds));
            root.put("job_json_seconds", median(jsonSeconds));
            root.put("job_parquet_seconds", median(parquetSeconds));
            root.put("single_process_tokens_per_s", tokens / median(localSeconds));
            root.put("job_json_tokens_per_s", tokens / median(jsonSeconds));
            root.put("job_parquet_tokens_per_s", tokens / median(parquetSeconds));
            root.put("job_json_over_single", median(jsonSeconds) / median(localSeconds));
            root.put("job_parquet_over_single", median(parquetSeconds) / median(localSeconds));
            new ObjectMapper().writerWithDefaultPrettyPrinter().writeValue(out.toFile(), root);
            System.out.println(root.toPrettyString());
        } finally {
            spark.stop();
        }
    }

    private static ScoreJobOptions job(String input, String format, Path work, Path model, ScoreSettings settings) {
        return new ScoreJobOptions(List.of(input), format, work.resolve("job-" + format).toString(), "parquet",
                model.toString(), settings, "overwrite", "id", "tokens", "text", 0, null);
    }

    private static void writeRandomRows(Path file, int rows, int seq, int vocab) throws IOException {
        Random random = new Random(7);
        try (BufferedWriter w = Files.newBufferedWriter(file)) {
            for (int r = 0; r < rows; r++) {
                w.write("{\"id\": \"r" + r + "\", \"tokens\": " + Arrays.toString(random.ints(seq, 0, vocab).toArray())
                        + "}\n");
            }
        }
    }

    private interface Work {
        Object run() throws IOException;
    }

    private static double time(Work work) throws IOException {
        long start = System.nanoTime();
        work.run();
        return (System.nanoTime() - start) / 1e9;
    }

    private static double median(List<Double> values) {
        double[] v = values.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        return v.length % 2 == 1 ? v[v.length / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
    }
}
