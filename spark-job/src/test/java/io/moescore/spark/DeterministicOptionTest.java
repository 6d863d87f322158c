package io.moescore.spark;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import org.apache.spark.SparkConf;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** --deterministic reaches the scorer from the command line, from spark.moescore.deterministic, and through ML persistence. */
class DeterministicOptionTest {
    @TempDir
    Path dir;

    /** The job's options from a minimal command line plus {@code extra}, resolved against {@code conf}. */
    static ScoreJobOptions resolve(SparkConf conf, String... extra) {
        MoeScoreJob job = new MoeScoreJob();
        String[] base = {"--input", "in.parquet", "--output", "out", "--model", "model"};
        String[] args = java.util.stream.Stream.concat(java.util.Arrays.stream(base), java.util.Arrays.stream(extra))
                .toArray(String[]::new);
        new CommandLine(job).parseArgs(args);
        return job.resolve(conf);
    }

    @Test
    void offUnlessAsked() {
        assertFalse(resolve(new SparkConf(false)).scoring().deterministic());
        assertFalse(MoeScoreJob.scorer(resolve(new SparkConf(false))).getDeterministic());
    }

    @Test
    void fromTheCommandLineOrTheConf() {
        assertTrue(resolve(new SparkConf(false), "--deterministic").scoring().deterministic());
        assertTrue(resolve(new SparkConf(false).set("spark.moescore.deterministic", "true")).scoring().deterministic());
        assertTrue(MoeScoreJob.scorer(resolve(new SparkConf(false), "--deterministic")).getDeterministic());
    }

    @Test
    void survivesSaveAndLoad() throws Exception {
        org.apache.spark.sql.SparkSession spark = org.apache.spark.sql.SparkSession.builder().master("local[1]")
                .appName("deterministic option").config("spark.ui.enabled", "false").getOrCreate();
        try {
            MoeScorer scorer = new MoeScorer().setModelPath("model").setDeterministic(true);
            String path = dir.resolve("scorer").toString();
            scorer.write().save(path);
            assertTrue(MoeScorer.load(path).getDeterministic());
        } finally {
            spark.stop();
        }
    }
}
