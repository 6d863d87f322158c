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

    /** An empty JSON file is 0 rows, exit 0, as an empty Parquet or Arrow file (ArrowScoreJobTest). */
    @Test
    void emptyJsonFileGivesEmptyOutput() throws IOException {
        Path input = Files.writeString(dir.resolve("empty.jsonl"), "");
        JobSummary summary = MoeScoreJob.score(spark, options(input, "json", SparkTests.demoModel().toString()));
        assertEquals(0, summary.rows());
        assertEquals(0, spark.read().parquet(dir.resolve("out").toString()).count());
    }

    /** A path that names no data file is refused by name in every format (exit 2), before anything is written. */
    @Test
    void inputsWithoutDataFilesAreRefusedInEveryFormat() throws IOException {
        Path empty = Files.createDirectories(dir.resolve("empty-folder"));
        Path hidden = Files.createDirectories(dir.resolve("only-hidden"));
        Files.writeString(hidden.resolve("_SUCCESS"), "");
        Files.writeString(hidden.resolve(".part-0.crc"), "x");
        for (String format : List.of("json", "parquet", "arrow")) {
            for (Path folder : List.of(empty, hidden)) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> MoeScoreJob.score(spark, options(folder, format, SparkTests.demoModel().toString())));
                assertEquals("input " + folder + " holds no data files (an empty folder, or only names starting "
                        + "with _ or .): nothing to score. Files that hold no rows are an empty input, scored as 0 "
                        + "rows", e.getMessage(), format);
            }
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> MoeScoreJob.score(spark,
                    options(dir.resolve("nothing-*.x"), format, SparkTests.demoModel().toString())));
            assertTrue(e.getMessage().endsWith("nothing-*.x matches no files"), e.getMessage());
            assertTrue(!Files.exists(dir.resolve("out")), "nothing written");
        }
    }

    /** JSON is read with an explicit schema: a field of the wrong type is its row's error, not the job's. */
    @Test
    void aJsonRowOfTheWrongTypeIsThatRowsError() throws IOException {
        Path input = dir.resolve("types.jsonl");
        Files.writeString(input, String.join("\n",
                "{\"id\": \"good\", \"tokens\": [10, 20, 30]}",
                "{\"id\": \"spaced\", \"tokens\": \"1 2 3\"}",
                "{\"id\": \"floats\", \"tokens\": [1.5, 2]}",
                "{\"id\": \"object\", \"tokens\": {\"a\": 1}}",
                "{\"id\": \"good2\", \"tokens\": [5, 6, 7, 8]}") + "\n");
        JobSummary summary = MoeScoreJob.score(spark, options(input, "json", SparkTests.demoModel().toString()));
        assertEquals(5, summary.rows());
        assertEquals(3, summary.errorRows());
        Map<String, String> errors = new HashMap<>();
        for (Row r : spark.read().parquet(dir.resolve("out").toString()).collectAsList()) {
            errors.put(r.getAs("id"), r.getAs("error"));
        }
        assertEquals(5, errors.size(), "every row keeps its id: " + errors);
        assertEquals(null, errors.get("good"));
        assertEquals(null, errors.get("good2"));
        assertTrue(errors.get("spaced").contains("malformed input record: {\"id\": \"spaced\", \"tokens\": \"1 2 3\"}"),
                errors.get("spaced"));
        assertTrue(errors.get("floats").contains("[1.5, 2]"), errors.get("floats"));
        assertTrue(errors.get("object").contains("malformed input record"), errors.get("object"));
    }

    /** A text-only JSON file whose tokens are null (or absent) is tokenized, row by row. */
    @Test
    void textOnlyJsonWithNullTokensIsScoredFromItsText() throws IOException {
        Path input = dir.resolve("text.jsonl");
        Files.writeString(input, "{\"id\": 1, \"tokens\": null, \"text\": \"def f(x):\\n    return x\\n\"}\n"
                + "{\"id\": 2, \"text\": \"import os\"}\n");
        JobSummary summary = MoeScoreJob.score(spark, options(input, "json", SparkTests.demoModel().toString()));
        assertEquals(2, summary.rows());
        assertEquals(0, summary.errorRows());
        for (Row r : spark.read().parquet(dir.resolve("out").toString()).collectAsList()) {
            assertTrue(r.<Integer>getAs("num_tokens") > 1, r.toString());
        }
    }

    /** JSON ids keep their type: integers give a bigint id, strings a string id; a mix is refused by name. */
    @Test
    void jsonIdsKeepTheirTypeAndMixedIdsAreRefused() throws IOException {
        Path ints = Files.writeString(dir.resolve("ints.jsonl"),
                "{\"id\": 5, \"tokens\": [1, 2]}\n{\"id\": 7, \"tokens\": [3, 4]}\n{\"id\": null, \"tokens\": [5]}\n");
        MoeScoreJob.score(spark, options(ints, "json", SparkTests.demoModel().toString()));
        org.apache.spark.sql.Dataset<Row> out = spark.read().parquet(dir.resolve("out").toString());
        assertEquals(org.apache.spark.sql.types.DataTypes.LongType, out.schema().apply("id").dataType());
        assertEquals(List.of(5L, 7L), out.where("id IS NOT NULL").orderBy("id").collectAsList().stream()
                .map(r -> r.<Long>getAs("id")).toList());

        Path strings = Files.writeString(dir.resolve("strings.jsonl"),
                "{\"id\": \"5\", \"tokens\": [1, 2]}\n{\"id\": \"007\", \"tokens\": [3, 4]}\n");
        ScoreJobOptions o = SparkTests.options(List.of(strings.toString()), "json", dir.resolve("out2").toString(),
                "parquet", SparkTests.demoModel().toString(), false, 0, 0, 64);
        MoeScoreJob.score(spark, o);
        out = spark.read().parquet(dir.resolve("out2").toString());
        assertEquals(org.apache.spark.sql.types.DataTypes.StringType, out.schema().apply("id").dataType());
        assertEquals(List.of("007", "5"), out.orderBy("id").collectAsList().stream()
                .map(r -> r.<String>getAs("id")).toList());

        Path mixed = Files.writeString(dir.resolve("mixed.jsonl"),
                "{\"id\": 5, \"tokens\": [1, 2]}\n{\"id\": \"5\", \"tokens\": [3, 4]}\n");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> MoeScoreJob.score(spark,
                SparkTests.options(List.of(mixed.toString()), "json", dir.resolve("out3").toString(), "parquet",
                        SparkTests.demoModel().toString(), false, 0, 0, 64)));
        assertTrue(e.getMessage().startsWith("column 'id' of [" + mixed + "] holds integers (e.g. 5 in file://" + mixed
                + ") and strings (e.g. \"5\" in file://" + mixed + "): ids keep their JSON type"), e.getMessage());
        assertTrue(!Files.exists(dir.resolve("out3")), "nothing written");

        Path floats = Files.writeString(dir.resolve("floats.jsonl"), "{\"id\": 5.5, \"tokens\": [1, 2]}\n");
        e = assertThrows(IllegalArgumentException.class, () -> MoeScoreJob.score(spark,
                SparkTests.options(List.of(floats.toString()), "json", dir.resolve("out4").toString(), "parquet",
                        SparkTests.demoModel().toString(), false, 0, 0, 64)));
        assertTrue(e.getMessage().contains("holds DECIMAL(2,1) values (e.g. 5.5 in"), e.getMessage());
    }
}
