package io.moescore.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.apache.spark.sql.functions.col;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moescore.spark.JobSummary;
import io.moescore.spark.MoeScoreJob;
import io.moescore.spark.ScoreJobOptions;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The job with Arrow IPC on both ends, through the {@code "arrow"} data source of arrow-io
 * ({@code io.moescore.arrow.spark.ArrowDataSource}): Arrow input, Arrow output readable back through
 * {@code spark.read().format("arrow")}, and every {@code --mode} (Spark 4.1 refuses SaveMode.ErrorIfExists for that
 * source, so {@code --mode error} relies on the job's own existence check).
 */
class ArrowScoreJobTest {
    static SparkSession spark;
    @TempDir
    static Path dir;
    /** The demo rows (id string, tokens array&lt;int&gt;) as a folder of .arrow files, written by the arrow source. */
    static String demoArrow;

    @BeforeAll
    static void start() {
        spark = SparkTests.localSession();
        demoArrow = dir.resolve("demo.arrow").toString();
        demoRows().write().format("arrow").mode("overwrite").save(demoArrow);
    }

    @AfterAll
    static void stop() {
        spark.stop();
    }

    /** demo/input.jsonl as the job's canonical input columns (JSON gives the tokens as array&lt;bigint&gt;). */
    static Dataset<Row> demoRows() {
        return spark.read().json(SparkTests.demoInput().toString())
            .select(col("id"), col("tokens").cast(DataTypes.createArrayType(DataTypes.IntegerType)).as("tokens"));
    }

    static ScoreJobOptions options(String input, String output, String mode, int partitions) {
        return new ScoreJobOptions(List.of(input), "arrow", output, "arrow", SparkTests.demoModel().toString(),
            SparkTests.cpu(), mode, "id", "tokens", "text", partitions, null);
    }

    @Test
    void arrowInArrowOutEqualsSingleProcessScorer() throws IOException {
        // The input written by the arrow source is Arrow IPC files, and it reads back as the 24 demo rows.
        assertFalse(arrowFiles(demoArrow).isEmpty(), "no .arrow files in " + demoArrow);
        assertEquals(24, spark.read().format("arrow").load(demoArrow).count());

        Path local = SparkTests.scoreLocally(SparkTests.demoInput(), dir, false, 0);
        String out = dir.resolve("scores.arrow").toString();
        JobSummary summary = MoeScoreJob.score(spark, options(demoArrow, out, "overwrite", 3));
        assertEquals(24, summary.rows());
        assertEquals(0, summary.errorRows());
        assertEquals(24 * 256, summary.tokens());
        assertTrue(Files.exists(Path.of(out + ".summary.json")), "summary written next to the output");
        assertFalse(arrowFiles(out).isEmpty(), "no .arrow files in " + out);

        Dataset<Row> back = spark.read().format("arrow").load(out);
        assertEquals(DataTypes.StringType, back.schema().apply("id").dataType());
        List<Row> rows = back.collectAsList();
        assertEquals(24, rows.size(), "rows in = rows out");
        Map<String, Row> byId = new HashMap<>();
        rows.forEach(r -> byId.put(r.getAs("id"), r));
        assertEquals(24, byId.size(), "ids are unique");
        ObjectMapper json = new ObjectMapper();
        for (String line : Files.readAllLines(local)) {
            JsonNode expected = json.readTree(line);
            String id = expected.get("id").asText();
            Row got = byId.get(id);
            assertNotNull(got, "no output row for " + id);
            assertEquals(expected.get("num_tokens").asInt(), got.<Integer>getAs("num_tokens"), id);
            assertEquals(expected.get("sum_logprob").asDouble(), got.<Double>getAs("sum_logprob"), 0.0, id);
            assertEquals(expected.get("mean_nll").asDouble(), got.<Double>getAs("mean_nll"), 0.0, id);
            assertEquals(expected.get("perplexity").asDouble(), got.<Double>getAs("perplexity"), 0.0, id);
            assertNull(got.getAs("error"), id);
        }
    }

    /**
     * {@code --resume} over Arrow input: a split is one input file (a DataSource V2 input partition, read through
     * SparkInternals.inputPartitions), so a fresh run over 3 files scores 3 splits (splits that could not be told
     * apart would be refused).
     */
    @Test
    void resumeOverArrowInputTakesEachFileAsASplit() throws IOException {
        String in = dir.resolve("three-files.arrow").toString();
        demoRows().repartition(3).write().format("arrow").mode("overwrite").save(in);
        assertEquals(3, arrowFiles(in).size());
        String out = dir.resolve("scores-resumed.parquet").toString();
        JobSummary summary = MoeScoreJob.score(spark,
            SparkTests.with(options(in, out, "error", 0), "outputFormat", "parquet", "resume", true));
        assertEquals(new JobSummary.ResumeCounts(0, 0, 0, 3, 24), summary.resume());
        assertEquals(24, spark.read().parquet(out).count());
    }

    /** The Arrow IPC files (.arrow) directly in a folder. */
    static List<Path> arrowFiles(String folder) throws IOException {
        try (var files = Files.list(Path.of(folder))) {
            return files.filter(f -> f.getFileName().toString().endsWith(".arrow")).toList();
        }
    }

    @Test
    void everyModeWritesArrow() throws IOException {
        String small = dir.resolve("small.arrow").toString();
        demoRows().limit(3).write().format("arrow").mode("overwrite").save(small);
        String out = dir.resolve("modes.arrow").toString();

        // error (the default): the output does not exist yet, so the job writes it.
        assertEquals(3, MoeScoreJob.score(spark, options(small, out, "error", 0)).rows());
        assertEquals(3, spark.read().format("arrow").load(out).count());
        // ... and refuses it once it does, before scoring anything.
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
            () -> MoeScoreJob.score(spark, options(small, out, "error", 0)));
        assertTrue(e.getMessage().contains("already exists"), e.getMessage());
        assertEquals(3, spark.read().format("arrow").load(out).count(), "the refused run left the output alone");

        assertEquals(3, MoeScoreJob.score(spark, options(small, out, "append", 0)).rows());
        assertEquals(6, spark.read().format("arrow").load(out).count(), "append adds to the output");

        assertEquals(3, MoeScoreJob.score(spark, options(small, out, "overwrite", 0)).rows());
        assertEquals(3, spark.read().format("arrow").load(out).count(), "overwrite replaces the output");
    }

    /** An Arrow file with a schema and no rows is an empty input: 0 rows, exit 0, as empty Parquet and JSON. */
    @Test
    void emptyArrowInputGivesEmptyOutput() throws IOException {
        String empty = dir.resolve("empty.arrow").toString();
        demoRows().limit(0).coalesce(1).write().format("arrow").mode("overwrite").save(empty);
        assertFalse(arrowFiles(empty).isEmpty(), "the arrow source wrote a file with no rows to " + empty);
        String out = dir.resolve("empty-scores.arrow").toString();
        assertEquals(0, MoeScoreJob.score(spark, options(empty, out, "error", 0)).rows());
        assertEquals(0, spark.read().format("arrow").load(out).count());
    }
}
