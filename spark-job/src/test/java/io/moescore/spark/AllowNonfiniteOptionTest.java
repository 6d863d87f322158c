package io.moescore.spark;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.apache.spark.SparkConf;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** --allow-nonfinite reaches the scorer from the command line and from spark.moescore.allowNonfinite; off by default. */
class AllowNonfiniteOptionTest {
    private static ScoreJobOptions resolve(SparkConf conf, String... extra) {
        MoeScoreJob job = new MoeScoreJob();
        String[] base = {"--input", "in.parquet", "--output", "out", "--model", "model"};
        new CommandLine(job).parseArgs(java.util.stream.Stream.concat(java.util.Arrays.stream(base),
                java.util.Arrays.stream(extra)).toArray(String[]::new));
        return job.resolve(conf);
    }

    @Test
    void offUnlessAsked() {
        assertFalse(resolve(new SparkConf(false)).allowNonfinite());
        assertFalse(MoeScoreJob.scorer(resolve(new SparkConf(false))).getAllowNonfinite());
    }

    @Test
    void fromTheCommandLineOrTheConf() {
        assertTrue(resolve(new SparkConf(false), "--allow-nonfinite").allowNonfinite());
        assertTrue(resolve(new SparkConf(false).set("spark.moescore.allowNonfinite", "true")).allowNonfinite());
        assertTrue(MoeScoreJob.scorer(resolve(new SparkConf(false), "--allow-nonfinite")).getAllowNonfinite());
    }
}
