package io.moescore.job;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.size;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moescore.spark.examples.ScoreDataFrameExample;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import scala.collection.Seq;

/**
 * The example program a user copies ({@link ScoreDataFrameExample}) runs as its {@code main} would under
 * spark-submit: Parquet in, scores joined back by id, Parquet out, equal to the single-process scorer's.
 */
class ScoreDataFrameExampleTest {
    @TempDir
    Path dir;

    @Test
    void exampleScoresAParquetTableAndJoinsTheScoresBack() throws IOException {
        Path documents = dir.resolve("documents.parquet");
        SparkSession spark = SparkTests.localSession();
        try {
            spark.read().json(SparkTests.demoInput().toString())
                    .select(col("id"), col("source"), col("tokens").cast(DataTypes.createArrayType(DataTypes.IntegerType))
                            .as("tokens"))
                    .withColumn("length", size(col("tokens")))
                    .repartition(3).write().parquet(documents.toString());
        } finally {
            spark.stop();
        }

        // spark-submit passes the master and settings as spark.* system properties; main's getOrCreate reads them
        Map<String, String> settings = Map.of("spark.master", "local[2]", "spark.ui.enabled", "false",
                "spark.moescore.cpuThreads", "2");
        settings.forEach(System::setProperty);
        Path output = dir.resolve("scored.parquet");
        try {
            ScoreDataFrameExample.main(new String[] {documents.toString(), output.toString(),
                    SparkTests.demoModel().toString()});
        } finally {
            settings.keySet().forEach(System::clearProperty);
        }

        Map<String, JsonNode> expected = new HashMap<>();
        ObjectMapper json = new ObjectMapper();
        for (String line : Files.readAllLines(SparkTests.scoreLocally(SparkTests.demoInput(), dir, false, 5))) {
            JsonNode row = json.readTree(line);
            expected.put(row.get("id").asText(), row);
        }
        spark = SparkTests.localSession();
        try {
            var scored = spark.read().parquet(output.toString());
            assertEquals(List.of("id", "source", "tokens", "length", "num_tokens", "sum_logprob", "mean_nll",
                    "perplexity", "top_tokens", "error"), Arrays.asList(scored.columns()));
            List<Row> rows = scored.collectAsList();
            assertEquals(24, rows.size(), "one row per document");
            assertEquals(24, rows.stream().map(r -> r.<String>getAs("id")).distinct().count());
            for (Row r : rows) {
                String id = r.getAs("id");
                JsonNode want = expected.get(id);
                assertEquals(256, r.<Integer>getAs("length"), id);
                assertEquals(want.get("num_tokens").asInt(), r.<Integer>getAs("num_tokens"), id);
                assertEquals(want.get("sum_logprob").asDouble(), r.<Double>getAs("sum_logprob"), 0.0, id);
                assertEquals(want.get("perplexity").asDouble(), r.<Double>getAs("perplexity"), 0.0, id);
                Seq<Object> top = r.getAs("top_tokens");
                for (int i = 0; i < 5; i++) {
                    assertEquals(want.get("top_tokens").get(i).asInt(), (Integer) top.apply(i), id);
                }
                assertNull(r.getAs("error"), id);
            }
        } finally {
            spark.stop();
        }
    }
}
