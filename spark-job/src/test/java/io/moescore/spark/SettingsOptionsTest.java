package io.moescore.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.moescore.backend.Precision;
import io.moescore.routing.RoutingSpec;
import io.moescore.score.LongRows;
import io.moescore.score.ScoreSettings;
import io.moescore.score.Setting;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.apache.spark.SparkConf;
import org.apache.spark.ml.param.Param;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * The scoring settings reach the job from its command line and from {@code spark.moescore.*} conf, and MoeScorer
 * from its Params, with one default and one check each; errors name the option the way it was given.
 */
class SettingsOptionsTest {
    private static ScoreJobOptions resolve(SparkConf conf, String... extra) {
        MoeScoreJob job = new MoeScoreJob();
        String[] base = {"--input", "in.parquet", "--output", "out", "--model", "model"};
        new CommandLine(job).parseArgs(Stream.concat(Arrays.stream(base), Arrays.stream(extra)).toArray(String[]::new));
        return job.resolve(conf);
    }

    private static String refusal(SparkConf conf, String... extra) {
        return assertThrows(IllegalArgumentException.class, () -> resolve(conf, extra)).getMessage();
    }

    @Test
    void everyScoringSettingIsAnOptionOfTheJob() {
        StringWriter usage = new StringWriter();
        new CommandLine(new MoeScoreJob()).usage(new PrintWriter(usage));
        String help = usage.toString().replaceAll("\\s+", " ");
        for (Setting<?> s : ScoreSettings.ALL) {
            assertTrue(help.contains(s.flag()), s.flag() + " in:\n" + usage);
            assertTrue(help.contains("(conf: " + s.key() + ";") || help.contains("(conf: " + s.key() + ")"),
                    s.key() + " in:\n" + usage);
        }
        assertTrue(help.contains("default 8192"), help);
        assertTrue(help.contains("--partitions"), help);
    }

    @Test
    void defaultsThenConfThenTheCommandLine() {
        assertEquals(ScoreSettings.DEFAULTS, resolve(new SparkConf(false)).scoring());
        SparkConf conf = new SparkConf(false).set("spark.moescore.batchTokens", "512")
                .set("spark.moescore.precision", "fp16").set("spark.moescore.cpuThreads", "3")
                .set("spark.moescore.partitions", "4").set("spark.moescore.topK", "2");
        ScoreJobOptions fromConf = resolve(conf);
        assertEquals(512, fromConf.scoring().batchTokens());
        assertEquals(Precision.FP16, fromConf.scoring().precision());
        assertEquals(3, fromConf.scoring().cpuThreads());
        assertEquals(4, fromConf.partitions());
        ScoreJobOptions both = resolve(conf, "--batch-tokens", "100", "--precision", "split-bf16", "--threads", "1",
                "--partitions", "0", "--token-logprobs");
        assertEquals(100, both.scoring().batchTokens());
        assertEquals(Precision.SPLIT_BF16, both.scoring().precision());
        assertEquals(1, both.scoring().cpuThreads());
        assertEquals(0, both.partitions());
        assertEquals(2, both.scoring().topK(), "what the command line does not give still comes from the conf");
        assertTrue(both.scoring().tokenLogProbs());
    }

    @Test
    void badValuesAreNamedAsGiven() {
        SparkConf none = new SparkConf(false);
        assertEquals("--threads must be between 0 and 4096, got 100000", refusal(none, "--threads", "100000"));
        assertEquals("--partitions must be at least 0, got -1", refusal(none, "--partitions", "-1"));
        assertEquals("--batch-tokens must be at least 1, got 0", refusal(none, "--batch-tokens", "0"));
        assertEquals("--batch-tokens 'many' is not a whole number", refusal(none, "--batch-tokens", "many"));
        assertEquals("--precision 'fp8' is not one of [bf16, fp16, split-bf16]", refusal(none, "--precision", "fp8"));
        assertEquals("--backend 'tpu' is not one of [auto, cpu, cuda]", refusal(none, "--backend", "tpu"));
        assertEquals("spark.moescore.partitions must be at least 0, got -1",
                refusal(new SparkConf(false).set("spark.moescore.partitions", "-1")));
        assertEquals("spark.moescore.cpuThreads must be between 0 and 4096, got 100000",
                refusal(new SparkConf(false).set("spark.moescore.cpuThreads", "100000")));
        assertEquals("spark.moescore.deterministic 'yes' is not true or false",
                refusal(new SparkConf(false).set("spark.moescore.deterministic", "yes")));
    }

    @Test
    void longRowsAndStrideComeFromEverySurfaceAndBadValuesAreNamed() {
        ScoreJobOptions flags = resolve(new SparkConf(false), "--long-rows", "stride", "--stride", "300");
        assertEquals(LongRows.STRIDE, flags.scoring().longRows());
        assertEquals(300, flags.scoring().stride());
        ScoreJobOptions conf = resolve(new SparkConf(false).set("spark.moescore.longRows", "TRUNCATE"));
        assertEquals(LongRows.TRUNCATE, conf.scoring().longRows());
        assertEquals(LongRows.ERROR, resolve(new SparkConf(false)).scoring().longRows(), "error by default");
        SparkConf none = new SparkConf(false);
        assertEquals("--long-rows 'sideways' is not one of [error, truncate, stride]",
                refusal(none, "--long-rows", "sideways"));
        assertEquals("--stride must be at least 0, got -1", refusal(none, "--stride", "-1"));
        assertEquals("spark.moescore.stride 'half' is not a whole number",
                refusal(new SparkConf(false).set("spark.moescore.stride", "half")));
        MoeScorer scorer = new MoeScorer().setModelPath("m").setLongRows("stride").setStride(64);
        assertEquals(LongRows.STRIDE, scorer.settings(none).longRows());
        assertEquals(64, scorer.settings(none).stride());
        assertEquals("MoeScorer param longRows 'all' is not one of [error, truncate, stride]",
                assertThrows(IllegalArgumentException.class, () -> scorer.setLongRows("all")).getMessage());
        assertEquals(List.of("num_tokens", "sum_logprob", "mean_nll", "perplexity", "num_windows", "truncated",
                "error"), scorer.scoreColumns());
        assertEquals("--stride (stride) 256 is not below the model's context of 256 tokens (max_position_embeddings):"
                + " give 1 to 255, or 0 for half the context", assertThrows(IllegalArgumentException.class,
                () -> flags.scoring().with(ScoreSettings.STRIDE, 256).rowLimits(256)).getMessage());
        assertEquals(128, flags.scoring().with(ScoreSettings.STRIDE, 0).rowLimits(256).stride(), "0: half");
    }

    @Test
    void theJobHandsEverySettingToMoeScorer() {
        ScoreJobOptions options = resolve(new SparkConf(false), "--precision", "fp16", "--threads", "3",
                "--top-k", "4", "--batch-tokens", "77", "--deterministic", "--backend", "cpu");
        MoeScorer scorer = MoeScoreJob.scorer(options);
        assertEquals("fp16", scorer.getPrecision());
        assertEquals(options.scoring(), scorer.settings(new SparkConf(false).set("spark.moescore.cpuThreads", "9")),
                "a cpuThreads the job set is not replaced by conf");
    }

    @Test
    void moeScorerTakesFp16AndNamesItsParams() {
        MoeScorer scorer = new MoeScorer().setModelPath("m").setPrecision("fp16");
        assertEquals(Precision.FP16, scorer.settings(new SparkConf(false)).precision());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> scorer.setPrecision("fp8"));
        assertEquals("MoeScorer param precision 'fp8' is not one of [bf16, fp16, split-bf16]", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> scorer.setBatchTokens(0));
        assertEquals("MoeScorer param batchTokens must be at least 1, got 0", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> scorer.setCpuThreads(100_000));
        assertEquals("MoeScorer param cpuThreads must be between 0 and 4096, got 100000", e.getMessage());
    }

    @Test
    void moeScorerHasAParamPerSettingAndTakesCpuThreadsFromConfUnlessSet() {
        MoeScorer scorer = new MoeScorer();
        for (Setting<?> s : ScoreSettings.ALL) {
            Param<Object> p = scorer.getParam(s.key());
            assertEquals(s.key(), p.name());
            assertTrue(scorer.hasDefault(p), s.key() + " has its setting's default");
        }
        SparkConf conf = new SparkConf(false).set("spark.moescore.cpuThreads", "3")
                .set("spark.moescore.batchTokens", "5");
        assertEquals(3, scorer.settings(conf).cpuThreads());
        assertEquals(8192, scorer.settings(conf).batchTokens(), "only executor resources come from conf");
        assertEquals(1, scorer.setCpuThreads(1).settings(conf).cpuThreads());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new MoeScorer().settings(new SparkConf(false).set("spark.moescore.cpuThreads", "-2")));
        assertEquals("spark.moescore.cpuThreads must be between 0 and 4096, got -2", e.getMessage());
    }

    @Test
    void moeScorerStaysJavaSerializable() throws Exception {
        MoeScorer scorer = new MoeScorer().setModelPath("m").setPrecision("fp16");
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        try (java.io.ObjectOutputStream out = new java.io.ObjectOutputStream(bytes)) {
            out.writeObject(scorer);
        }
        MoeScorer back;
        try (java.io.ObjectInputStream in = new java.io.ObjectInputStream(
                new java.io.ByteArrayInputStream(bytes.toByteArray()))) {
            back = (MoeScorer) in.readObject();
        }
        assertEquals("fp16", back.getPrecision());
        assertEquals(ScoreSettings.ALL.size() + 9, back.params().length, "every Param listed once");
        assertThrows(IllegalArgumentException.class, () -> back.setBatchTokens(0));
    }

    @Test
    void routingIsOneSpecOnEverySurface() {
        SparkConf none = new SparkConf(false);
        ScoreJobOptions flags = resolve(none, "--routing", "top-p:0.9:3", "--backend", "cpu");
        assertEquals(RoutingSpec.parse("top-p:0.9:3"), flags.scoring().routing());
        MoeScorer scorer = MoeScoreJob.scorer(flags);
        assertEquals("top-p:0.9:3", scorer.getRouting());
        assertEquals(flags.scoring().routing(), scorer.settings(none).routing());
        assertEquals(RoutingSpec.parse("sparsemax"),
                resolve(new SparkConf(false).set("spark.moescore.routing", "sparsemax")).scoring().routing());
        assertEquals(RoutingSpec.MODEL, new MoeScorer().setModelPath("m").settings(none).routing());
        assertEquals("spark.moescore.routing 'top-k': expected top-k:K",
                refusal(new SparkConf(false).set("spark.moescore.routing", "top-k")));
        assertEquals("MoeScorer param routing 'top-q:1': unknown router 'top-q', expected model, top-k:K, "
                + "top-p:P[:MAXK], sigmoid:T, softmax:T, sparsemax, quadratic:T, pioneer:T, batch-top-k:K[:B] or "
                + "drop-experts:FILE", assertThrows(IllegalArgumentException.class,
                () -> new MoeScorer().setRouting("top-q:1")).getMessage());
        assertTrue(refusal(none, "--routing", "batch-top-k:2", "--deterministic")
                .startsWith("--deterministic (deterministic) refuses --routing batch-top-k:2 (routing)"));
    }
}
