package io.moescore.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moescore.spark.JobSummary;
import io.moescore.spark.MoeScoreJob;
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
import scala.collection.Seq;

/** The Spark job in local mode gives exactly the single-process scorer's results, row by row. */
class LocalModeScoreJobTest {
    static SparkSession spark;
    @TempDir
    Path dir;

    @BeforeAll
    static void start() {
        // running tasks' row counts reach the driver with executor heartbeats: often enough for the progress test
        spark = SparkTests.localBuilder().config("spark.executor.heartbeatInterval", "500ms").getOrCreate();
    }

    @AfterAll
    static void stop() {
        spark.stop();
    }

    @Test
    void jobEqualsSingleProcessScorerRowByRow() throws IOException {
        Path local = SparkTests.scoreLocally(SparkTests.demoInput(), dir, true, 5);
        String out = dir.resolve("scores").toString();
        JobSummary summary = MoeScoreJob.score(spark, SparkTests.options(List.of(SparkTests.demoInput().toString()),
                "json", out, "parquet", SparkTests.demoModel().toString(), true, 5, 3, 2000));
        assertEquals(24, summary.rows());
        assertEquals(0, summary.errorRows());
        assertEquals(24 * 256, summary.tokens());
        assertTrue(summary.expertLoad().length == 4 && summary.expertLoad()[0].length == 8);

        Map<String, Row> byId = new HashMap<>();
        for (Row r : spark.read().parquet(out).collectAsList()) {
            byId.put(r.getString(r.fieldIndex("id")), r);
        }
        assertEquals(24, byId.size());
        ObjectMapper json = new ObjectMapper();
        for (String line : Files.readAllLines(local)) {
            JsonNode expected = json.readTree(line);
            Row got = byId.get(expected.get("id").asText());
            assertEquals(expected.get("num_tokens").asInt(), got.getInt(got.fieldIndex("num_tokens")));
            assertEquals(expected.get("sum_logprob").asDouble(), got.getDouble(got.fieldIndex("sum_logprob")), 0.0);
            assertEquals(expected.get("perplexity").asDouble(), got.getDouble(got.fieldIndex("perplexity")), 0.0);
            Seq<Object> lp = got.getAs("token_logprobs");
            assertEquals(expected.get("token_logprobs").size(), lp.size());
            for (int i = 0; i < lp.size(); i++) {
                assertEquals((float) expected.get("token_logprobs").get(i).asDouble(), (Float) lp.apply(i), 0.0f);
            }
            Seq<Object> top = got.getAs("top_tokens");
            for (int i = 0; i < 5; i++) {
                assertEquals(expected.get("top_tokens").get(i).asInt(), (Integer) top.apply(i));
            }
            assertNull(got.getAs("error"));
        }
        Path summaryFile = Path.of(out + ".summary.json");
        assertTrue(Files.exists(summaryFile), "summary written next to the output");
        assertEquals(24, json.readTree(summaryFile.toFile()).get("rows").asInt());
    }

    /**
     * fp16 goes through the job and MoeScorer (it was refused as a MoeScorer precision) and is recorded in the
     * summary; the CPU backend computes in fp32 whatever the precision, so the scores equal bf16's single-process ones.
     */
    @Test
    void fp16IsAcceptedRecordedAndOnTheCpuScoresAsFp32() throws IOException {
        Path local = SparkTests.scoreLocally(SparkTests.demoInput(), dir, false, 0);
        String out = dir.resolve("fp16").toString();
        JobSummary summary = MoeScoreJob.score(spark, SparkTests.options(List.of(SparkTests.demoInput().toString()),
                "json", out, "json", SparkTests.demoModel().toString(), "cpu", "fp16", false, 0, 2, 4000));
        assertEquals(24, summary.rows());
        assertEquals(0, summary.errorRows());
        JsonNode settings = new ObjectMapper().readTree(Path.of(out + ".summary.json").toFile()).get("settings");
        assertEquals("fp16", settings.get("precision").asText(), settings.toString());
        assertEquals(4000, settings.get("batchTokens").asInt());
        assertEquals("cpu", settings.get("backend").asText());
        Map<String, Row> byId = new HashMap<>();
        for (Row r : spark.read().json(out).collectAsList()) {
            byId.put(r.getString(r.fieldIndex("id")), r);
        }
        ObjectMapper json = new ObjectMapper();
        for (String line : Files.readAllLines(local)) {
            JsonNode expected = json.readTree(line);
            Row got = byId.get(expected.get("id").asText());
            assertEquals(expected.get("sum_logprob").asDouble(), got.getDouble(got.fieldIndex("sum_logprob")), 0.0);
        }
    }

    @Test
    void progressLinesAppearWhileTheJobRuns() throws IOException {
        java.io.ByteArrayOutputStream captured = new java.io.ByteArrayOutputStream();
        java.io.PrintStream err = System.err;
        spark.conf().set("spark.moescore.progressSeconds", "0.05");
        try {
            System.setErr(new java.io.PrintStream(captured, true, java.nio.charset.StandardCharsets.UTF_8));
            MoeScoreJob.score(spark, SparkTests.options(List.of(SparkTests.demoInput().toString()), "json",
                    dir.resolve("progress").toString(), "json", SparkTests.demoModel().toString(), false, 0, 4, 512));
        } finally {
            System.setErr(err);
            spark.conf().unset("spark.moescore.progressSeconds");
        }
        String log = captured.toString(java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(java.util.regex.Pattern.compile("moescore: progress \\d+/\\d+ tasks, [\\d,]+ rows").matcher(log).find(),
                "a progress line:\n" + log);
    }

    /** Rows and tokens move window by window while the one task runs, not only when it ends. */
    @Test
    void progressCountsRowsBeforeAnyTaskEnds() throws IOException {
        Path input = dir.resolve("long.jsonl");
        List<String> lines = new java.util.ArrayList<>();
        for (int copy = 0; copy < 4; copy++) {
            for (String line : Files.readAllLines(SparkTests.demoInput())) {
                lines.add(line.replaceFirst("\"id\": *\"", "\"id\": \"" + copy + "-"));
            }
        }
        Files.write(input, lines);
        java.io.ByteArrayOutputStream captured = new java.io.ByteArrayOutputStream();
        java.io.PrintStream err = System.err;
        spark.conf().set("spark.moescore.progressSeconds", "0.05");
        JobSummary summary;
        try {
            System.setErr(new java.io.PrintStream(captured, true, java.nio.charset.StandardCharsets.UTF_8));
            // one partition, 4 rows per window: 24 windows in one task
            summary = MoeScoreJob.score(spark, SparkTests.options(List.of(input.toString()), "json",
                    dir.resolve("long-scores").toString(), "parquet", SparkTests.demoModel().toString(), false, 0, 0,
                    256));
        } finally {
            System.setErr(err);
            spark.conf().unset("spark.moescore.progressSeconds");
        }
        assertEquals(96, summary.rows());
        String log = captured.toString(java.nio.charset.StandardCharsets.UTF_8);
        java.util.regex.Matcher m = java.util.regex.Pattern.compile(
                "moescore: progress 0/1 tasks, ([\\d,]+) rows, ([\\d,]+) tokens").matcher(log);
        long most = 0;
        while (m.find()) {
            long rows = Long.parseLong(m.group(1).replace(",", ""));
            assertEquals(rows * 256, Long.parseLong(m.group(2).replace(",", "")), m.group());
            most = Math.max(most, rows);
        }
        assertTrue(most > 0 && most < 96, "rows counted while the task ran (most seen " + most + "):\n" + log);
    }

    @Test
    void textColumnIsTokenizedWithTheModelsTokenizer() throws IOException {
        Path input = dir.resolve("text.jsonl");
        Files.writeString(input, "{\"id\": \"t1\", \"text\": \"import numpy as np\\n\\ndef f(x):\\n    return np.sum(x)\\n\"}\n"
                + "{\"id\": \"t2\", \"text\": \"The licence grants permission.\"}\n"
                + "{\"id\": \"t3\", \"text\": null}\n");
        String out = dir.resolve("text-scores").toString();
        JobSummary summary = MoeScoreJob.score(spark, SparkTests.options(List.of(input.toString()), "json", out,
                "json", SparkTests.demoModel().toString(), false, 0, 0, 8192));
        assertEquals(3, summary.rows());
        assertEquals(1, summary.errorRows());
        Map<String, Row> byId = new HashMap<>();
        for (Row r : spark.read().json(out).collectAsList()) {
            byId.put(r.getString(r.fieldIndex("id")), r);
        }
        assertTrue(byId.get("t1").getLong(byId.get("t1").fieldIndex("num_tokens")) > 5);
        assertNull(byId.get("t1").getAs("error"));
        assertTrue(byId.get("t3").<String>getAs("error").contains("null"));
        // every row has every field, null ones too ("error": null), as score-local writes them
        ObjectMapper json = new ObjectMapper();
        List<String> local = Files.readAllLines(SparkTests.scoreLocally(input, dir, false, 0));
        java.util.Set<String> localFields = new java.util.TreeSet<>();
        json.readTree(local.get(0)).fieldNames().forEachRemaining(localFields::add);
        assertTrue(localFields.contains("error"), localFields.toString());
        int lines = 0;
        try (var files = Files.list(Path.of(out))) {
            for (Path part : files.filter(p -> p.getFileName().toString().startsWith("part-")).toList()) {
                for (String line : Files.readAllLines(part)) {
                    java.util.Set<String> fields = new java.util.TreeSet<>();
                    json.readTree(line).fieldNames().forEachRemaining(fields::add);
                    assertEquals(localFields, fields, line);
                    lines++;
                }
            }
        }
        assertEquals(3, lines);
        // code scores lower perplexity than prose with a model trained on code
        assertTrue(byId.get("t1").<Double>getAs("perplexity") < byId.get("t2").<Double>getAs("perplexity"));
    }
}
