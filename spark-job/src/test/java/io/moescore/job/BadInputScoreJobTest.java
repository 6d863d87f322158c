package io.moescore.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.moescore.spark.JobSummary;
import io.moescore.spark.MoeScoreJob;
import io.moescore.spark.ScoreJobOptions;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Bad rows get an error and are never dropped; a bad option, column, model or output fails before any task. */
class BadInputScoreJobTest {
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

    ScoreJobOptions options(Path input, String format, String model) {
        return SparkTests.options(List.of(input.toString()), format, dir.resolve("out").toString(), "parquet", model,
                false, 0, 0, 64);
    }

    @Test
    void badRowsGetErrorsAndRowsInEqualRowsOut() throws IOException {
        Path input = dir.resolve("in.jsonl");
        Files.writeString(input, String.join("\n",
                "{\"id\": \"good\", \"tokens\": [10, 20, 30]}",
                "{\"id\": \"oov\", \"tokens\": [10, 4096]}",
                "{\"id\": \"negative\", \"tokens\": [-3, 1]}",
                "{\"id\": \"huge\", \"tokens\": [1, 99999999999]}",
                "{\"id\": \"empty\", \"tokens\": []}",
                "{\"id\": \"nulltokens\", \"tokens\": null}",
                "{\"id\": \"nullelement\", \"tokens\": [1, null, 2]}",
                "{this is not json",
                "{\"id\": \"good2\", \"tokens\": [5, 6, 7, 8]}") + "\n");
        JobSummary summary = MoeScoreJob.score(spark, options(input, "json", SparkTests.demoModel().toString()));
        assertEquals(9, summary.rows());
        assertEquals(7, summary.errorRows());
        List<Row> rows = spark.read().parquet(dir.resolve("out").toString()).collectAsList();
        assertEquals(9, rows.size(), "rows in = rows out");
        Map<String, String> errors = new HashMap<>();
        for (Row r : rows) {
            errors.put(String.valueOf(r.<String>getAs("id")), r.getAs("error"));
        }
        assertEquals(null, errors.get("good"));
        assertEquals(null, errors.get("good2"));
        assertTrue(errors.get("oov").contains("token id 4096 at position 1"), errors.get("oov"));
        assertTrue(errors.get("negative").contains("token id -3 at position 0"));
        assertTrue(errors.get("huge").contains("99999999999"));
        assertTrue(errors.get("empty").contains("empty sequence"));
        assertTrue(errors.get("nulltokens").contains("null"));
        assertTrue(errors.get("nullelement").contains("tokens[1] is null"));
        assertTrue(errors.get("null").contains("malformed input record: {this is not json"), errors.toString());
    }

    @Test
    void missingOrMistypedColumnsFailBeforeAnyTaskNamingTheColumn() throws IOException {
        Path noTokens = dir.resolve("no-tokens.parquet");
        spark.sql("SELECT CAST(id AS BIGINT) AS id, 'x' AS other FROM range(3)").write().parquet(noTokens.toString());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> MoeScoreJob.score(spark, options(noTokens, "parquet", SparkTests.demoModel().toString())));
        assertTrue(e.getMessage().contains("neither a 'tokens' nor a 'text' column"), e.getMessage());

        Path stringTokens = dir.resolve("string-tokens.parquet");
        spark.sql("SELECT id, '1 2 3' AS tokens FROM range(3)").write().parquet(stringTokens.toString());
        e = assertThrows(IllegalArgumentException.class,
                () -> MoeScoreJob.score(spark, options(stringTokens, "parquet", SparkTests.demoModel().toString())));
        assertTrue(e.getMessage().contains("column 'tokens' has type string, expected array<int>"), e.getMessage());

        Path noId = dir.resolve("no-id.parquet");
        spark.sql("SELECT array(1, 2) AS tokens FROM range(3)").write().parquet(noId.toString());
        e = assertThrows(IllegalArgumentException.class,
                () -> MoeScoreJob.score(spark, options(noId, "parquet", SparkTests.demoModel().toString())));
        assertTrue(e.getMessage().contains("no column 'id'"), e.getMessage());
    }

    @Test
    void missingModelInputOrExistingOutputFailWithTheirNames() throws IOException {
        Path input = dir.resolve("in.jsonl");
        Files.writeString(input, "{\"id\": \"a\", \"tokens\": [1, 2]}\n");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> MoeScoreJob.score(spark, options(input, "json", dir.resolve("no-model").toString())));
        assertTrue(e.getMessage().contains("no-model"), e.getMessage());

        e = assertThrows(IllegalArgumentException.class, () -> MoeScoreJob.score(spark,
                options(dir.resolve("missing.jsonl"), "json", SparkTests.demoModel().toString())));
        assertTrue(e.getMessage().contains("missing.jsonl"), e.getMessage());

        Files.createDirectories(dir.resolve("out"));
        e = assertThrows(IllegalArgumentException.class,
                () -> MoeScoreJob.score(spark, options(input, "json", SparkTests.demoModel().toString())));
        assertTrue(e.getMessage().contains("already exists"), e.getMessage());
    }

    @Test
    void corruptedInputFileFailsTheJobNamingTheFile() throws IOException {
        Path good = dir.resolve("good.parquet");
        spark.sql("SELECT id, array(1, 2, 3) AS tokens FROM range(10)").coalesce(1).write().parquet(good.toString());
        Path part;
        try (var files = Files.list(good)) {
            part = files.filter(p -> p.toString().endsWith(".parquet")).findFirst().orElseThrow();
        }
        byte[] bytes = Files.readAllBytes(part);
        Files.write(part, java.util.Arrays.copyOf(bytes, bytes.length / 2));
        // the driver reads every input footer first (ParquetInputCheck): the job fails before any task
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> MoeScoreJob.score(spark, options(good, "parquet", SparkTests.demoModel().toString())));
        assertTrue(e.getMessage().contains(part.getFileName().toString()), e.getMessage());
        assertTrue(e.getMessage().contains("not a readable Parquet file"), e.getMessage());
        assertTrue(!Files.exists(dir.resolve("out/_SUCCESS")), "nothing committed");
    }

    @Test
    void emptyInputGivesEmptyOutput() throws IOException {
        Path input = dir.resolve("empty.parquet");
        spark.sql("SELECT id, array(1) AS tokens FROM range(0)").write().parquet(input.toString());
        JobSummary summary = MoeScoreJob.score(spark, options(input, "parquet", SparkTests.demoModel().toString()));
        assertEquals(0, summary.rows());
        assertEquals(0, spark.read().parquet(dir.resolve("out").toString()).count());
    }
}
