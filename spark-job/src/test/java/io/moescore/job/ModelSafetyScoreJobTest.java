package io.moescore.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moescore.score.ScoreSettings;
import io.moescore.spark.JobSummary;
import io.moescore.spark.MoeScoreJob;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The job and broken models: numbers written as every output writes them (SequenceScore: an overflowing perplexity
 * is the largest finite double in JSON and Parquet, not "Infinity" / inf, mean_nll exact, strict JSON), and a
 * malformed tokenizer refused on the driver before any scoring task (exit 2), not as an error on every text row.
 */
class ModelSafetyScoreJobTest {
    static final ObjectMapper STRICT = new ObjectMapper();
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

    /** lm_head x 3000: log-probs of order -1e4, finite, whose mean NLL overflows exp(). */
    Path overflowingModel() throws IOException {
        return BrokenModels.withEdit(dir.resolve("overflow"), "lm_head.weight", (values, shape) -> {
            for (int i = 0; i < values.length; i++) {
                values[i] *= 3000f;
            }
        });
    }

    static List<JsonNode> jsonRows(Path folder) throws IOException {
        List<JsonNode> rows = new ArrayList<>();
        try (Stream<Path> files = Files.list(folder)) {
            for (Path part : files.filter(p -> p.getFileName().toString().startsWith("part-")).toList()) {
                for (String line : Files.readAllLines(part)) {
                    assertFalse(line.matches(".*\"(NaN|-?Infinity)\".*"), line);  // a number spelled as a string
                    rows.add(STRICT.readTree(line));  // NaN / Infinity tokens fail here
                }
            }
        }
        return rows;
    }

    @Test
    void anOverflowingPerplexityIsTheLargestFiniteDoubleInJsonAndParquet() throws IOException {
        Path model = overflowingModel();
        String input = SparkTests.demoInput().toString();
        String json = dir.resolve("json").toString();
        JobSummary summary = MoeScoreJob.score(spark, SparkTests.options(List.of(input), "json", json, "json",
                model.toString(), false, 0, 1, 4096));
        assertEquals(0, summary.errorRows());
        List<JsonNode> rows = jsonRows(Path.of(json));
        assertEquals(24, rows.size());
        for (JsonNode row : rows) {
            assertTrue(row.get("mean_nll").asDouble() > 709.79, row.toString());
            assertEquals(Double.MAX_VALUE, row.get("perplexity").asDouble(), row.toString());
        }
        String parquet = dir.resolve("parquet").toString();
        MoeScoreJob.score(spark, SparkTests.options(List.of(input), "json", parquet, "parquet", model.toString(),
                false, 0, 1, 4096));
        for (Row r : spark.read().parquet(parquet).collectAsList()) {
            assertEquals(Double.MAX_VALUE, r.getDouble(r.fieldIndex("perplexity")));
            assertTrue(Double.isFinite(r.getDouble(r.fieldIndex("mean_nll"))));
        }
    }

    @Test
    void aMalformedTokenizerFailsOnTheDriverNamingIt() throws IOException {
        Path model = BrokenModels.withEdit(dir.resolve("badtok"), "lm_head.weight", (values, shape) -> { });
        Files.writeString(model.resolve("tokenizer.json"), "{\"model\": {\"type\": \"BPE\", \"vocab\": secret");
        Path input = Files.writeString(dir.resolve("text.jsonl"), "{\"id\": 1, \"text\": \"def f(x):\"}\n"
                + "{\"id\": 2, \"text\": \"return x\"}\n");
        String out = dir.resolve("out").toString();
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> MoeScoreJob.score(spark, SparkTests.options(List.of(input.toString()), "json", out, "json",
                        model.toString(), false, 0, 1, 4096)));
        assertTrue(e.getMessage().contains(model.resolve("tokenizer.json").toString())
                && !e.getMessage().contains("secret"), e.getMessage());
        assertFalse(Files.exists(Path.of(out)), "nothing written");
        // a good tokenizer: the same input scores
        Files.copy(SparkTests.demoModel().resolve("tokenizer.json"), model.resolve("tokenizer.json"),
                java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        assertEquals(0, MoeScoreJob.score(spark, SparkTests.options(List.of(input.toString()), "json", out, "json",
                model.toString(), false, 0, 1, 4096)).errorRows());
    }

    /** lm_head row 123 holds a NaN at column 5. */
    Path nanModel() throws IOException {
        return BrokenModels.withEdit(dir.resolve("nan"), "lm_head.weight", (values, shape) -> values[123 * 192 + 5] =
                Float.NaN);
    }

    @Test
    void nanWeightsFailTheTasksWithTheTensorNamedAndExitTwo() throws IOException {
        Path model = nanModel();
        String out = dir.resolve("nan-out").toString();
        Exception e = org.junit.jupiter.api.Assertions.assertThrows(Exception.class,
                () -> MoeScoreJob.score(spark, SparkTests.options(List.of(SparkTests.demoInput().toString()), "json",
                        out, "json", model.toString(), false, 0, 1, 4096)));
        io.moescore.model.ModelFormatException problem = MoeScoreJob.modelProblem(e);
        assertTrue(problem instanceof io.moescore.model.NonFiniteWeightException, String.valueOf(e));
        assertTrue(problem.getMessage().contains("lm_head.weight") && problem.getMessage().contains("[123, 5]"),
                problem.getMessage());
        assertFalse(Files.exists(Path.of(out, "_SUCCESS")), "nothing committed");
    }

    @Test
    void allowNonfiniteScoresAndFlagsEveryRow() throws IOException {
        Path model = nanModel();
        String out = dir.resolve("allowed").toString();
        ScoreSettings allowing = SparkTests.cpu().with(ScoreSettings.BATCH_TOKENS, 4096)
                .with(ScoreSettings.TOKEN_LOGPROBS, true).with(ScoreSettings.ALLOW_NONFINITE, true);
        JobSummary summary = MoeScoreJob.score(spark, new io.moescore.spark.ScoreJobOptions(
                List.of(SparkTests.demoInput().toString()), "json", out, "json", model.toString(), allowing, "error",
                "id", "tokens", "text", 1, null));
        assertEquals(24, summary.errorRows(), "every row kept, flagged: exit 3");
        List<JsonNode> rows = jsonRows(Path.of(out));
        assertEquals(24, rows.size());
        for (JsonNode row : rows) {
            assertTrue(row.get("error").asText().contains("non-finite score")
                    && row.get("error").asText().contains("position 1"), row.toString());
            assertTrue(!row.has("sum_logprob") || row.get("sum_logprob").isNull(), row.toString());
            assertTrue(!row.has("perplexity") || row.get("perplexity").isNull(), row.toString());
        }
    }
}
