package io.moescore.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import io.moescore.spark.JobSummary;
import io.moescore.spark.MoeScoreJob;
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

/**
 * The demo input scored three ways (partitions / batch tokens: 1 / 100000, 5 / 300, 3 / 2000) gives bit-identical
 * sum_logprob, perplexity and token_logprobs for every row, compared by id: how rows are split into tasks and
 * packed into batches must not change a score (what retries and speculative copies rely on).
 */
class DeterminismScoreJobTest {
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

    record Scores(long sumBits, long perplexityBits, int[] tokenLogprobBits) {
    }

    Map<String, Scores> score(String name, int partitions, int batchTokens) {
        String out = dir.resolve(name).toString();
        JobSummary summary = MoeScoreJob.score(spark, SparkTests.options(List.of(SparkTests.demoInput().toString()),
                "json", out, "parquet", SparkTests.demoModel().toString(), true, 0, partitions, batchTokens));
        assertEquals(24, summary.rows(), name);
        assertEquals(0, summary.errorRows(), name);
        Map<String, Scores> byId = new HashMap<>();
        for (Row r : spark.read().parquet(out).collectAsList()) {
            assertNull(r.getAs("error"), name);
            Seq<Object> lp = r.getAs("token_logprobs");
            int[] bits = new int[lp.size()];
            for (int i = 0; i < bits.length; i++) {
                bits[i] = Float.floatToRawIntBits((Float) lp.apply(i));
            }
            byId.put(r.getString(r.fieldIndex("id")), new Scores(
                    Double.doubleToRawLongBits(r.getDouble(r.fieldIndex("sum_logprob"))),
                    Double.doubleToRawLongBits(r.getDouble(r.fieldIndex("perplexity"))), bits));
        }
        assertEquals(24, byId.size(), name + ": one row per id");
        return byId;
    }

    @Test
    void scoresAreBitIdenticalWhateverThePartitioningAndBatching() {
        Map<String, Scores> reference = score("p1-b100000", 1, 100000);
        for (Object[] run : new Object[][] {{"p5-b300", 5, 300}, {"p3-b2000", 3, 2000}}) {
            String name = (String) run[0];
            Map<String, Scores> other = score(name, (Integer) run[1], (Integer) run[2]);
            assertEquals(reference.keySet(), other.keySet(), name);
            for (Map.Entry<String, Scores> e : reference.entrySet()) {
                String id = e.getKey();
                Scores want = e.getValue();
                Scores got = other.get(id);
                assertNotNull(got, name + " " + id);
                assertEquals(255, want.tokenLogprobBits().length, id);
                assertEquals(want.sumBits(), got.sumBits(), name + " " + id + ": sum_logprob "
                        + Double.longBitsToDouble(want.sumBits()) + " vs " + Double.longBitsToDouble(got.sumBits()));
                assertEquals(want.perplexityBits(), got.perplexityBits(), name + " " + id + ": perplexity");
                for (int i = 0; i < want.tokenLogprobBits().length; i++) {
                    assertEquals(want.tokenLogprobBits()[i], got.tokenLogprobBits()[i], name + " " + id
                            + ": token_logprobs[" + i + "] " + Float.intBitsToFloat(want.tokenLogprobBits()[i])
                            + " vs " + Float.intBitsToFloat(got.tokenLogprobBits()[i]));
                }
                assertEquals(want.tokenLogprobBits().length, got.tokenLogprobBits().length, name + " " + id);
            }
        }
    }
}
