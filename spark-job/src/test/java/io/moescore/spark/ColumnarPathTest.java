package io.moescore.spark;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.expr;
import static org.apache.spark.sql.functions.sum;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.moescore.score.ScoreSettings;
import java.nio.file.Path;
import java.util.List;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Which inputs the job scores as column batches (Arrow and Parquet scans, their columns in any order) and which row
 * by row (JSON), and the data path with no model ({@link ZeroScoreJob}) giving every row once.
 */
class ColumnarPathTest {
    static SparkSession spark;
    @TempDir
    static Path dir;
    static String arrow;
    static String parquet;
    static String json;
    static String reordered;

    @BeforeAll
    static void start() {
        spark = SparkSession.builder().master("local[2]").appName("moescore-test").config("spark.ui.enabled", "false")
                .getOrCreate();
        Dataset<Row> rows = spark.range(0, 300, 1, 3).select(col("id"),
                expr("transform(sequence(0, cast(id % 40 as int)), x -> cast((id + x) % 4096 as int))").as("tokens"));
        arrow = dir.resolve("in.arrow").toString();
        parquet = dir.resolve("in.parquet").toString();
        json = dir.resolve("in.json").toString();
        reordered = dir.resolve("reordered.arrow").toString();
        rows.write().format("arrow").mode("overwrite").save(arrow);
        rows.write().parquet(parquet);
        rows.write().json(json);
        rows.select(col("tokens"), col("id")).write().format("arrow").mode("overwrite").save(reordered);
    }

    @AfterAll
    static void stop() {
        spark.stop();
    }

    @Test
    void arrowAndParquetAreReadAsColumnBatchesJsonAsRows() {
        assertTrue(ZeroScoreJob.columnar(spark, List.of(arrow), "arrow"));
        assertTrue(ZeroScoreJob.columnar(spark, List.of(parquet), "parquet"));
        assertTrue(ZeroScoreJob.columnar(spark, List.of(reordered), "arrow"), "columns in another order");
        assertFalse(ZeroScoreJob.columnar(spark, List.of(json), "json"));
    }

    @Test
    void everyRowComesOutOnceWithItsTokenCount() {
        long tokens = 0;
        for (long id = 0; id < 300; id++) {
            tokens += id % 40 + 1;
        }
        for (String[] input : List.of(new String[] {arrow, "arrow"}, new String[] {parquet, "parquet"},
                new String[] {json, "json"}, new String[] {reordered, "arrow"})) {
            Dataset<Row> scores = ZeroScoreJob.scores(spark, List.of(input[0]), input[1],
                    ScoreSettings.DEFAULTS.with(ScoreSettings.BATCH_TOKENS, 64));
            Row totals = scores.agg(sum(col("num_tokens")), expr("count(distinct id)"), expr("count(*)"),
                    expr("count(error)")).first();
            assertEquals(tokens, totals.getLong(0), input[0]);
            assertEquals(300L, totals.getLong(1), input[0]);
            assertEquals(300L, totals.getLong(2), input[0]);
            assertEquals(0L, totals.getLong(3), input[0]);
        }
    }
}
