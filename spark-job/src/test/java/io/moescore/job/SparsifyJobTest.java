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
 * The sparsify Spark job (local mode, CPU backend) on the demo model, calibrated on 2 rows of demo/calibration.jsonl
 * so that some experts go unreached: its checkpoint holds the single-process {@code sparsify --method sparsegpt}'s
 * kept positions and (to bf16 rounding) values, one-shot and sequential, every group of 4 keeps at most 2, and the
 * checkpoint scores through the scoring job. Then the errors: no or missing calibration data, executors too small
 * for the Hessians, bad options.
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
        // one down-projection Hessian: 14336^2 x 8 bytes
        assertTrue(m.contains(String.format("%,d bytes", 14336L * 14336 * 8)), m);
    }

    @Test
    void badOptionsNameTheOption() {
        StringWriter err = new StringWriter();
        CommandLine cli = new CommandLine(new SparsifyJob()).setErr(new PrintWriter(err));
        assertEquals(2, cli.execute("--calibration", "c.jsonl", "--no-such-option"));
        assertTrue(err.toString().contains("--no-such-option"), err.toString());
        String model = SparkTests.demoModel().toString();
        for (String[] bad : new String[][] {{"--method", "wanda"}, {"--batch-tokens", "0"},
            {"--calibration-format", "csv"}, {"--pattern", "4:8"}, {"--pattern", "128:2:8"}, {"--partitions", "-1"},
            {"--precision", "fp8"}, {"--threads", "100000"}}) {
            SparsifyJob job = new SparsifyJob();
            new CommandLine(job).parseArgs("--calibration", "c.jsonl", "--model", model, "--out", "out", bad[0],
                    bad[1]);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> job.resolve(new SparkConf(false)));
            assertTrue(e.getMessage().startsWith(bad[0] + " "), e.getMessage());
        }
        SparsifyJob job = new SparsifyJob();
        new CommandLine(job).parseArgs("--calibration", "c.jsonl", "--model", model, "--out", "out");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> job.resolve(new SparkConf(false).set("spark.moescore.partitions", "-1")));
        assertEquals("spark.moescore.partitions must be at least 0, got -1", e.getMessage());
        SparsifyOptions o = job.resolve(new SparkConf(false).set("spark.moescore.batchTokens", "512")
                .set("spark.moescore.topK", "5"));
        assertEquals(512, o.scoring().batchTokens());
        assertEquals(0, o.scoring().topK(), "the sparsify job takes no --top-k, so no topK conf either");
    }

    private Path calibrationFile() throws IOException {
        Path file = dir.resolve("calibration.jsonl");
        if (!Files.exists(file)) {
            Files.write(file, Files.readAllLines(SparkTests.repoRoot().resolve("demo/calibration.jsonl"))
                    .subList(0, CALIBRATION_ROWS));
        }
        return file;
    }

    private SparsifyOptions options(Path calibration, String out, boolean sequential) {
        return new SparsifyOptions(List.of(calibration.toString()), "json", SparkTests.demoModel().toString(),
                dir.resolve(out).toString(), "2:4", "sparsegpt", sequential, SparkTests.cpu(), 2, "tokens", "text",
                null, null);
    }

    private SparsifyOptions options(List<String> calibration, String format, String model, boolean sequential,
                                    String method, int batchTokens) {
        return new SparsifyOptions(calibration, format, model, dir.resolve("job").toString(), "2:4", method,
                sequential, SparkTests.cpu().with(ScoreSettings.BATCH_TOKENS, batchTokens), 0, "tokens", "text",
                null, null);
    }
}
