package io.moescore.job;

import static org.apache.spark.sql.functions.col;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moescore.model.TextTokenizer;
import io.moescore.score.ScoreSettings;
import io.moescore.spark.JobSummary;
import io.moescore.spark.MoeScoreJob;
import io.moescore.spark.ScoringSpec;
import io.moescore.spark.TokenRows;
import io.moescore.spark.sparsify.SparsifyJob;
import io.moescore.spark.sparsify.SparsifyOptions;
import io.moescore.spark.sparsify.SparsifySummary;
import io.moescore.sparsify.CalibrationRows;
import io.moescore.sparsify.ExpertReconstruction;
import io.moescore.sparsify.Sparsifier;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.util.LongAccumulator;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * The sparsify Spark job (local mode, CPU backend) on the demo model, calibrated on 2 to 4 rows of
 * demo/calibration.jsonl so that some experts go unreached: its checkpoint is the single-process
 * {@code moescore sparsify}'s to the bit, sparsegpt one-shot and sequential, with expert reconstruction, 128:2:8,
 * wanda and magnitude; every group of 4 keeps at most 2, and the checkpoint scores through the scoring job. Then the
 * errors: no or missing calibration data, executors too small for the Hessians, bad options.
 */
class SparsifyJobTest {
    private static final int CALIBRATION_ROWS = 2;

    static SparkSession spark;
    @TempDir
    Path dir;

    @BeforeAll
    static void start() {
        spark = SparkTests.localSession();
    }

    @AfterAll
    static void stop() {
        spark.stop();
    }

    @Test
    void oneShotCheckpointMatchesTheSingleProcessToolAndScores() throws IOException {
        Path calibration = calibrationFile();
        Sparsifier.Result single = Sparsifier.sparsify(SparkTests.demoModel(), dir.resolve("single"), "sparsegpt",
                false, CalibrationRows.read(calibration));
        SparsifySummary job = SparsifyJob.run(spark, options(calibration, "job", false));

        assertFalse(single.fallbacksPerLayer().isEmpty(), "2 calibration rows leave some experts unreached");
        assertEquals(single.fallbacksPerLayer(), job.result().fallbacksPerLayer());
        assertEquals(single.expertsFellBack(), job.result().expertsFellBack());
        assertEquals(CALIBRATION_ROWS, job.rows());
        assertEquals(CALIBRATION_ROWS * 256, job.tokens());
        assertEquals(1, job.passes().size(), "one-shot: every layer's Hessians in one pass");
        SparseCheckpoints.assertSame(dir.resolve("single"), dir.resolve("job"));

        JsonNode summary = new ObjectMapper().readTree(dir.resolve("job.summary.json").toFile());
        assertEquals(single.tensorsPruned(), summary.get("tensors_pruned").asInt());
        assertTrue(summary.get("calibration_tokens_per_second").asDouble() > 0, summary.toString());
        assertEquals(single.expertsFellBack().size(), summary.get("experts_fell_back_to_magnitude").size());

        // the checkpoint scores through the scoring job
        Path input = dir.resolve("input.jsonl");
        Files.write(input, Files.readAllLines(SparkTests.demoInput()).subList(0, 4));
        String scores = dir.resolve("scores").toString();
        JobSummary scored = MoeScoreJob.score(spark, SparkTests.options(List.of(input.toString()), "json", scores,
                "json", dir.resolve("job").toString(), false, 0, 0, 8192));
        assertEquals(4, scored.rows());
        assertEquals(0, scored.errorRows());
        for (Row r : spark.read().json(scores).collectAsList()) {
            double sum = r.getDouble(r.fieldIndex("sum_logprob"));
            assertTrue(Double.isFinite(sum) && sum < 0, "a finite score: " + r);
        }
    }

    @Test
    void sequentialCheckpointMatchesTheSingleProcessTool() throws IOException {
        Path calibration = calibrationFile();
        Sparsifier.sparsify(SparkTests.demoModel(), dir.resolve("single"), "sparsegpt", true,
                CalibrationRows.read(calibration));
        SparsifySummary job = SparsifyJob.run(spark, options(calibration, "job", true));
        assertEquals(4, job.passes().size(), "one pass per MoE layer");
        SparseCheckpoints.assertSame(dir.resolve("single"), dir.resolve("job"));
        assertFalse(Files.exists(dir.resolve("job.work")), "the partly pruned copies are deleted");
    }

    /**
     * --reconstruct-steps: each reached expert tuned on the executors gives the tool's checkpoint to the bit, 2:4
     * sequential and 128:2:8 one-shot, on the smallest fixture (OLMoE-shaped, hidden 64, 8 experts top-3) from 6
     * calibration rows in 3 partitions run in batches of 2 sequences (so batching, partitioning and the order the
     * shuffle delivers in must not matter); the summary has each expert's error before and after, equal to the
     * tool's, lower after on average.
     */
    @Test
    void reconstructedCheckpointsAreTheSingleProcessToolsToTheBit() throws IOException {
        Path model = SparkTests.repoRoot().resolve("gpu-runtime/src/test/resources/hf/olmoe-fp32");
        Path calibration = dir.resolve("calibration-olmoe.jsonl");
        List<String> rows = new ArrayList<>();
        for (int[] r : CalibrationRows.read(calibrationFile(6))) {   // the demo's token ids, in this vocabulary
            rows.add("{\"tokens\": " + Arrays.toString(Arrays.stream(r).limit(200).map(t -> t % 512).toArray()) + "}");
        }
        Files.write(calibration, rows);
        ExpertReconstruction.Options tune = new ExpertReconstruction.Options(3, 1e-3, 64, 3);
        for (String pattern : List.of("2:4", "128:2:8")) {
            boolean sequential = pattern.equals("2:4");
            String name = pattern.replace(':', '-');
            Sparsifier.Result single = Sparsifier.sparsify(model, dir.resolve("single-" + name), pattern,
                    "sparsegpt", sequential, tune, CalibrationRows.read(calibration));
            SparsifySummary job = SparsifyJob.run(spark, new SparsifyOptions(List.of(calibration.toString()), "json",
                    model.toString(), dir.resolve("job-" + name).toString(), pattern, "sparsegpt", sequential,
                    SparkTests.cpu().with(ScoreSettings.BATCH_TOKENS, 400), 3, "tokens", "text", null, null, tune));
            SparseCheckpoints.assertSame(dir.resolve("single-" + name), dir.resolve("job-" + name));
            assertFalse(single.reconstructed().isEmpty(), "experts reconstructed");
            assertEquals(single.reconstructed(), job.result().reconstructed(), pattern + ": the same errors");
            JsonNode summary = new ObjectMapper().readTree(dir.resolve("job-" + name + ".summary.json").toFile());
            assertEquals(pattern, summary.get("pattern").asText());
            assertEquals(3, summary.get("reconstruct_steps").asInt());
            JsonNode experts = summary.get("reconstruction_per_expert");
            assertEquals(single.reconstructed().size(), experts.size(), summary.toString());
            double before = 0;
            double after = 0;
            for (JsonNode e : experts) {
                assertTrue(e.get("tokens").asInt() > 0, e.toString());
                before += e.get("error_before").asDouble();
                after += e.get("error_after").asDouble();
            }
            System.out.printf("%s: %d experts reconstructed, mean error %.4e -> %.4e%n", pattern, experts.size(),
                    before / experts.size(), after / experts.size());
            assertTrue(after < before, pattern + ": " + before + " -> " + after);
        }
    }

    /** wanda (one-shot, from the Hessians' diagonals gathered on the executors) and magnitude: the tool's, to the bit. */
    @Test
    void wandaAndMagnitudeCheckpointsAreTheSingleProcessTools() throws IOException {
        Path calibration = calibrationFile(CALIBRATION_ROWS);
        for (String pattern : List.of("128:2:8", "2:4")) {
            String method = pattern.equals("2:4") ? "magnitude" : "wanda";
            String name = method + "-" + pattern.replace(':', '-');
            Sparsifier.sparsify(SparkTests.demoModel(), dir.resolve("single-" + name), pattern, method, false,
                    ExpertReconstruction.Options.NONE, method.equals("magnitude") ? List.of()
                            : CalibrationRows.read(calibration));
            SparsifySummary job = SparsifyJob.run(spark, options(method.equals("magnitude") ? List.of()
                    : List.of(calibration.toString()), "job-" + name, pattern, method, false,
                    ExpertReconstruction.Options.NONE, 2, 8192));
            SparseCheckpoints.assertSame(dir.resolve("single-" + name), dir.resolve("job-" + name));
            assertEquals(method.equals("magnitude") ? 0 : 1, job.passes().size(), name);
        }
    }

    @Test
    void calibrationRowsAreReadFromEveryFormatTheScoringJobReads() throws IOException {
        Path json = dir.resolve("calibration.jsonl");
        List<String> lines = new ArrayList<>(Files.readAllLines(SparkTests.repoRoot().resolve("demo/calibration.jsonl"))
                .subList(0, 3));
        lines.add("{\"id\": \"prose\", \"text\": \"def add(a, b):\\n    return a + b\\n\"}");
        lines.add("{\"id\": \"broken\", \"tokens\": [1, 2");
        Files.write(json, lines);
        ScoringSpec spec = new ScoringSpec(SparkTests.demoModel().toString(), SparkTests.cpu(), "tokens", "text",
                Map.of());
        LongAccumulator skipped = spark.sparkContext().longAccumulator();
        List<String> fromJson = tokenRows(TokenRows.read(spark, List.of(json.toString()), "json", spec, 2, skipped));
        assertEquals(1, skipped.value(), "the malformed line is skipped and counted");
        assertEquals(4, fromJson.size());
        try (TextTokenizer tokenizer = TextTokenizer.load(SparkTests.demoModel())) {
            assertTrue(fromJson.contains(Arrays.toString(tokenizer.encode("def add(a, b):\n    return a + b\n"))),
                    "text is tokenized with the model's tokenizer");
        }
        Dataset<Row> rows = spark.read().json(json.toString()).where("_corrupt_record IS NULL")
                .select(col("text"), col("tokens").cast(DataTypes.createArrayType(DataTypes.IntegerType)).as("tokens"));
        for (String format : List.of("parquet", "arrow")) {
            String path = dir.resolve("calibration." + format).toString();
            rows.write().format(format).mode("overwrite").save(path);
            assertEquals(fromJson, tokenRows(TokenRows.read(spark, List.of(path), format, spec, 0,
                    spark.sparkContext().longAccumulator())), format);
        }
    }

    private static List<String> tokenRows(JavaRDD<int[]> rows) {
        return rows.collect().stream().map(Arrays::toString).sorted().toList();
    }

    @Test
    void missingCalibrationDataIsAUsageError() {
        IllegalArgumentException none = assertThrows(IllegalArgumentException.class,
                () -> options(List.of(), "json", SparkTests.demoModel().toString(), false, "sparsegpt", 8192));
        assertTrue(none.getMessage().contains("--calibration"), none.getMessage());
        String missing = dir.resolve("no-such.jsonl").toString();
        IllegalArgumentException absent = assertThrows(IllegalArgumentException.class, () -> SparsifyJob.run(spark,
                options(List.of(missing), "json", SparkTests.demoModel().toString(), false, "sparsegpt", 8192)));
        System.out.println(absent.getMessage());
        assertTrue(absent.getMessage().contains(missing), absent.getMessage());
        assertFalse(Files.exists(dir.resolve("job")), "nothing written");
    }

    @Test
    void executorsTooSmallForTheHessiansFailBeforeAnyWorkSayingHowManyBytes() throws IOException {
        // config.json only: the check reads nothing else, and no task may run (there are no weights to load)
        Path mixtral = Files.createDirectories(dir.resolve("mixtral-8x7b"));
        String config = Files.readString(SparkTests.demoModel().resolve("config.json"))
                .replace("\"hidden_size\": 192", "\"hidden_size\": 4096")
                .replace("\"intermediate_size\": 384", "\"intermediate_size\": 14336")
                .replace("\"num_hidden_layers\": 4", "\"num_hidden_layers\": 32")
                .replace("\"num_attention_heads\": 6", "\"num_attention_heads\": 32")
                .replace("\"num_key_value_heads\": 2", "\"num_key_value_heads\": 8")
                .replace("\"vocab_size\": 4096", "\"vocab_size\": 32000");
        Files.writeString(mixtral.resolve("config.json"), config);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SparsifyJob.run(spark,
                options(List.of(calibrationFile().toString()), "json", mixtral.toString(), false, "sparsegpt", 8192)));
        String m = e.getMessage();
        System.out.println(m);
        assertTrue(m.contains("bytes") && m.contains("spark.executor.memory"), m);
        // one down-projection Hessian, summed exactly: its triangle, 14336 x 14337 / 2 entries of 16 bytes
        assertTrue(m.contains(String.format("%,d bytes", 14336L * 14337 * 8)), m);
    }

    @Test
    void badOptionsNameTheOption() {
        StringWriter err = new StringWriter();
        CommandLine cli = new CommandLine(new SparsifyJob()).setErr(new PrintWriter(err));
        assertEquals(2, cli.execute("--calibration", "c.jsonl", "--no-such-option"));
        assertTrue(err.toString().contains("--no-such-option"), err.toString());
        String model = SparkTests.demoModel().toString();
        for (String[] bad : new String[][] {{"--method", "obs"}, {"--batch-tokens", "0"},
            {"--calibration-format", "csv"}, {"--pattern", "4:8"}, {"--partitions", "-1"},
            {"--precision", "fp8"}, {"--threads", "100000"}, {"--reconstruct-steps", "-1"},
            {"--reconstruct-steps", "many"}, {"--sequential", "--method", "wanda"},
            {"--reconstruct-steps", "5", "--method", "magnitude"}}) {
            SparsifyJob job = new SparsifyJob();
            List<String> args = new ArrayList<>(List.of("--calibration", "c.jsonl", "--model", model, "--out", "out"));
            args.addAll(List.of(bad));
            new CommandLine(job).parseArgs(args.toArray(String[]::new));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> job.resolve(new SparkConf(false)), String.join(" ", bad));
            assertTrue(e.getMessage().startsWith(bad[0] + " "), e.getMessage());
        }
        SparsifyJob job = new SparsifyJob();
        new CommandLine(job).parseArgs("--calibration", "c.jsonl", "--model", model, "--out", "out");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> job.resolve(new SparkConf(false).set("spark.moescore.partitions", "-1")));
        assertEquals("spark.moescore.partitions must be at least 0, got -1", e.getMessage());
        SparsifyOptions o = job.resolve(new SparkConf(false).set("spark.moescore.batchTokens", "512")
                .set("spark.moescore.topK", "5").set("spark.moescore.reconstructSteps", "7"));
        assertEquals(512, o.scoring().batchTokens());
        assertEquals(ExpertReconstruction.Options.of(7), o.reconstruction(), "conf spark.moescore.reconstructSteps");
        assertEquals("spark.moescore.reconstructSteps must be at least 0, got -2", assertThrows(
                IllegalArgumentException.class, () -> job.resolve(new SparkConf(false)
                        .set("spark.moescore.reconstructSteps", "-2"))).getMessage());
        assertEquals(0, o.scoring().topK(), "the sparsify job takes no --top-k, so no topK conf either");
    }

    private Path calibrationFile() throws IOException {
        return calibrationFile(CALIBRATION_ROWS);
    }

    private Path calibrationFile(int rows) throws IOException {
        Path file = dir.resolve("calibration-" + rows + ".jsonl");
        if (!Files.exists(file)) {
            Files.write(file, Files.readAllLines(SparkTests.repoRoot().resolve("demo/calibration.jsonl"))
                    .subList(0, rows));
        }
        return file;
    }

    private SparsifyOptions options(Path calibration, String out, boolean sequential) {
        return options(List.of(calibration.toString()), out, "2:4", "sparsegpt", sequential,
                ExpertReconstruction.Options.NONE, 2, SparkTests.cpu().batchTokens());
    }

    private SparsifyOptions options(List<String> calibration, String format, String model, boolean sequential,
                                    String method, int batchTokens) {
        return new SparsifyOptions(calibration, format, model, dir.resolve("job").toString(), "2:4", method,
                sequential, SparkTests.cpu().with(ScoreSettings.BATCH_TOKENS, batchTokens), 0, "tokens", "text",
                null, null);
    }

    private SparsifyOptions options(List<String> calibration, String out, String pattern, String method,
                                    boolean sequential, ExpertReconstruction.Options reconstruction, int partitions,
                                    int batchTokens) {
        return new SparsifyOptions(calibration, "json", SparkTests.demoModel().toString(), dir.resolve(out).toString(),
                pattern, method, sequential, SparkTests.cpu().with(ScoreSettings.BATCH_TOKENS, batchTokens),
                partitions, "tokens", "text", null, null, reconstruction);
    }
}
