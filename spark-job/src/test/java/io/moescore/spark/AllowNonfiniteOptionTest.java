package io.moescore.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.moescore.score.ScoreSettings;
import org.apache.spark.SparkConf;
import org.junit.jupiter.api.Test;

/** --allow-nonfinite reaches the scorer from the command line and from spark.moescore.allowNonfinite; off by default. */
class AllowNonfiniteOptionTest {
    private static ScoreJobOptions resolve(SparkConf conf, String... extra) {
        return DeterministicOptionTest.resolve(conf, extra);
    }

    @Test
    void offUnlessAsked() {
        assertFalse(resolve(new SparkConf(false)).scoring().allowNonfinite());
        assertFalse(MoeScoreJob.scorer(resolve(new SparkConf(false))).getAllowNonfinite());
    }

    @Test
    void fromTheCommandLineOrTheConf() {
        assertTrue(resolve(new SparkConf(false), "--allow-nonfinite").scoring().allowNonfinite());
        assertTrue(resolve(new SparkConf(false).set("spark.moescore.allowNonfinite", "true")).scoring().allowNonfinite());
        assertTrue(MoeScoreJob.scorer(resolve(new SparkConf(false), "--allow-nonfinite")).getAllowNonfinite());
    }

    /** One setting (ScoreSettings.ALLOW_NONFINITE): MoeScorer's Param, the load options, what summaries record. */
    @Test
    void oneSettingEverywhere() {
        SparkConf conf = new SparkConf(false);
        assertFalse(new MoeScorer().settings(conf).allowNonfinite());
        ScoreSettings set = new MoeScorer().setAllowNonfinite(true).settings(conf);
        assertTrue(set.allowNonfinite());
        assertTrue(set.loadOptions().allowNonfinite());
        assertTrue(set.forEngine().allowNonfinite(), "engines loaded with and without it are not shared");
        assertFalse(ScoreSettings.DEFAULTS.loadOptions().allowNonfinite());
        assertEquals(Boolean.TRUE, resolve(conf, "--allow-nonfinite").scoring().describe().get("allowNonfinite"));
        assertTrue(java.util.Arrays.stream(new MoeScorer().params()).anyMatch(p -> p.name().equals("allowNonfinite")));
    }
}
