package io.moescore.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moescore.backend.cuda.GpuRuntime;
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
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import scala.collection.Seq;

/**
 * The Spark job in local mode on the GPU (two concurrent tasks sharing one engine): split-bf16 scores equal the
 * fp32 CPU scorer's within a per-token 2e-4 on average, bf16 scores equal the single-process GPU scorer's; in
 * deterministic mode bit for bit, though the job packs rows into 2000-token batches over 4 partitions and the
 * single-process scorer into one batch of all of them.
 */
@Tag("gpu")
class CudaScoreJobTest {
    static SparkSession spark;
    @TempDir
    Path dir;

    @BeforeAll
    static void start() {
        String why = GpuRuntime.whyUnavailable(0);
        assumeTrue(why == null, why + ": skipping GPU tests");
        spark = SparkTests.localSession();
    }

    @AfterAll
    static void stop() {
        if (spark != null) {
            spark.stop();
        }
    }

    @Test
    void splitBf16JobMatchesTheCpuScorer() throws IOException {
        Path cpu = SparkTests.scoreLocally(SparkTests.demoInput(), dir, true, 5);
        Map<String, Row> job = runJob("split-bf16");
        compare(cpu, job, 2e-4, true);
    }

    @Test
    void bf16JobMatchesTheSingleProcessGpuScorer() throws IOException {
        Path local = SparkTests.scoreLocally(SparkTests.demoInput(), dir.resolve("gpu.jsonl"), "cuda", "bf16", true, 5);
        Map<String, Row> job = runJob("bf16");
        // expert outputs are summed with atomicAdd on both sides: equal up to the order of k fp32 additions
        compare(local, job, 1e-4, false);
    }

    @Test
    void deterministicJobEqualsTheSingleProcessScorerBitForBit() throws IOException {
        Path local = SparkTests.scoreLocally(SparkTests.demoInput(), dir.resolve("deterministic.jsonl"), "cuda", "bf16",
                true, true, 5);
        Map<String, Row> job = runJob("bf16", true);
        compare(local, job, 0.0, true);
        ObjectMapper json = new ObjectMapper();
        for (String line : Files.readAllLines(local)) {
            JsonNode expected = json.readTree(line);
            Seq<Object> got = job.get(expected.get("id").asText()).getAs("token_logprobs");
            for (int i = 0; i < got.size(); i++) {
                assertEquals(Float.floatToIntBits(expected.get("token_logprobs").get(i).floatValue()),
                        Float.floatToIntBits((Float) got.apply(i)), expected.get("id").asText() + " token " + i);
            }
        }
    }

    private Map<String, Row> runJob(String precision) {
        return runJob(precision, false);
    }

    private Map<String, Row> runJob(String precision, boolean deterministic) {
        String out = dir.resolve("scores-" + precision + (deterministic ? "-deterministic" : "")).toString();
        JobSummary summary = MoeScoreJob.score(spark, SparkTests.options(List.of(SparkTests.demoInput().toString()),
                "json", out, "parquet", SparkTests.demoModel().toString(), "cuda", precision, deterministic, true, 5, 4,
                2000));
        assertEquals(24, summary.rows());
        assertEquals(0, summary.errorRows());
        for (JobSummary.ExecutorLine line : summary.executors()) {
            assertTrue(line.device().contains("cuda:0"), "executor device " + line.device());
        }
        Map<String, Row> byId = new HashMap<>();
        for (Row r : spark.read().parquet(out).collectAsList()) {
            byId.put(r.getString(r.fieldIndex("id")), r);
        }
        assertEquals(24, byId.size());
        return byId;
    }

    /** Row by row: mean per-token log-prob difference within `perToken`, top-5 equal where asked. */
    private static void compare(Path expectedJsonl, Map<String, Row> job, double perToken, boolean sameTop5)
            throws IOException {
        ObjectMapper json = new ObjectMapper();
        double worst = 0;
        for (String line : Files.readAllLines(expectedJsonl)) {
            JsonNode expected = json.readTree(line);
            Row got = job.get(expected.get("id").asText());
            int predicted = expected.get("num_tokens").asInt() - 1;
            assertEquals(expected.get("num_tokens").asInt(), got.getInt(got.fieldIndex("num_tokens")));
            assertNull(got.getAs("error"));
            double diff = Math.abs(expected.get("sum_logprob").asDouble() - got.getDouble(got.fieldIndex("sum_logprob")));
            worst = Math.max(worst, diff / predicted);
            Seq<Object> lp = got.getAs("token_logprobs");
            assertEquals(predicted, lp.size());
            if (sameTop5) {
                Seq<Object> top = got.getAs("top_tokens");
                for (int i = 0; i < 5; i++) {
                    assertEquals(expected.get("top_tokens").get(i).asInt(), (Integer) top.apply(i),
                            expected.get("id").asText() + " top-5");
                }
            }
        }
        System.out.printf("worst mean per-token |log-prob difference| %.2e (bound %.0e)%n", worst, perToken);
        assertTrue(worst <= perToken, "mean per-token difference " + worst);
    }
}
