package io.moescore.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moescore.cli.RoutingStudyCommandTest;
import io.moescore.report.RoutingStudyReport;
import io.moescore.routing.RoutingSpec;
import io.moescore.score.RoutingStudy;
import io.moescore.score.RoutingStudyOptions;
import io.moescore.score.ScoreSettings;
import io.moescore.spark.MoeScoreJob;
import io.moescore.spark.RoutingStudyJob;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.spark.SparkConf;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerJobStart;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * The routing study as a Spark job (local[2], the demo model on the CPU) gives the single-process study's numbers on
 * the same rows: perplexities, routed pairs and top-1 changes to the bit (both sum the log-probs exactly); a bad
 * variant is refused before any job runs.
 */
class RoutingStudyJobTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    static SparkSession spark;
    static final AtomicInteger jobs = new AtomicInteger();
    @TempDir
    Path dir;

    @BeforeAll
    static void start() {
        spark = SparkTests.localSession();
        spark.sparkContext().addSparkListener(new SparkListener() {
            @Override
            public void onJobStart(SparkListenerJobStart job) {
                jobs.incrementAndGet();
            }
        });
    }

    @AfterAll
    static void stop() {
        spark.stop();
    }

    /** Jobs started so far, once Spark has delivered every event posted until now. */
    static int jobsStarted() throws Exception {
        spark.sparkContext().listenerBus().waitUntilEmpty();
        return jobs.get();
    }

    private Path input(int rows, int tokens) throws Exception {
        return RoutingStudyCommandTest.demoRows(dir.resolve("in.jsonl"), rows, tokens);
    }

    private static ScoreSettings settings() {
        return SparkTests.cpu().with(ScoreSettings.BATCH_TOKENS, 64);
    }

    private static List<RoutingSpec> variants(String text) {
        return RoutingStudyOptions.Variants.parse(text).specs();
    }

    private RoutingStudyJob.Options options(Path in, Path out, String variants) {
        return new RoutingStudyJob.Options(List.of(in.toString()), "json", SparkTests.demoModel().toString(),
                variants(variants), out, false, 3, settings());
    }

    @Test
    void sparkStudyEqualsTheSingleProcessStudy() throws Exception {
        Path in = input(6, 40);
        RoutingStudy.Result local = new RoutingStudy(new PrintStream(new ByteArrayOutputStream())).run(
                new RoutingStudyOptions(SparkTests.demoModel(), in, dir.resolve("local"), variants("top-k:1,top-k:2"),
                        0, 1, false, settings()));
        Path out = dir.resolve("study");
        assertEquals(MoeScoreJob.EXIT_OK, RoutingStudyJob.run(spark, options(in, out, "top-k:1,top-k:2"),
                System.err));

        JsonNode study = JSON.readTree(out.resolve(RoutingStudyReport.JSON).toFile());
        assertTrue(Files.exists(out.resolve(RoutingStudyReport.MARKDOWN)));
        assertTrue(Files.readString(out.resolve(RoutingStudyReport.HTML)).contains("<svg"));
        assertEquals(local.rows(), study.get("rows").asLong());
        assertEquals(local.tokens(), study.get("tokens").asLong());
        assertTrue(study.get("device").asText().startsWith("Spark local[2]"), study.get("device").asText());
        JsonNode got = study.get("variants");
        assertEquals(3, got.size());
        for (int i = 0; i < 3; i++) {
            RoutingStudy.Variant expected = local.variants().get(i);
            JsonNode v = got.get(i);
            String name = expected.spec();
            assertEquals(name, v.get("variant").asText());
            assertEquals(0, v.get("row_errors").asLong(), name);
            assertEquals(expected.predicted(), v.get("predicted_tokens").asLong(), name);
            // Jackson writes the shortest decimal that reads back as the same double: equal to the bit
            assertEquals(expected.perplexity(), v.get("perplexity").asDouble(), 0.0, name);
            assertEquals(expected.perplexityRatio(), v.get("perplexity_ratio").asDouble(), 0.0, name);
            assertEquals(expected.routedPairs(), v.get("routed_token_expert_pairs").asLong(), name);
            assertEquals(expected.expertFlopShare(), v.get("expert_flop_share").asDouble(), 0.0, name);
            assertEquals(expected.top1Compared(), v.get("top1_compared_rows").asLong(), name);
            assertEquals(expected.top1Changed(), v.get("top1_changed_rows").asLong(), name);
            assertFalse(v.get("batch_dependent_scores").asBoolean(), name);
            assertTrue(v.get("tokens_per_second").asDouble() > 0, name);
        }
        // the demo model routes 2 of its experts: top-k:2 is its own router, top-k:1 half the expert work
        assertEquals(1.0, got.get(0).get("perplexity_ratio").asDouble(), 0.0);
        assertEquals(1.0, got.get(2).get("perplexity_ratio").asDouble(), 0.0);
        assertEquals(1.0, got.get(2).get("expert_flop_share").asDouble(), 0.0);
        assertEquals(0, got.get(2).get("top1_changed_rows").asLong());
        assertEquals(0.5, got.get(1).get("expert_flop_share").asDouble(), 0.0);
        assertTrue(got.get(1).get("perplexity_ratio").asDouble() != 1.0, "top-k:1 scores as the model's router does");
        assertEquals(6, got.get(1).get("top1_compared_rows").asLong());
    }

    @Test
    void badVariantExitsTwoBeforeAnyJob() throws Exception {
        Path in = input(2, 20);
        Path out = dir.resolve("refused");
        int before = jobsStarted();
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        int code = RoutingStudyJob.run(spark, options(in, out, "top-k:1,top-k:99"),
                new PrintStream(log, true, StandardCharsets.UTF_8));
        String message = log.toString(StandardCharsets.UTF_8);
        assertEquals(MoeScoreJob.EXIT_BAD_INVOCATION, code, message);
        assertTrue(message.contains("--variants") && message.contains("top-k:99"), message);
        assertEquals(before, jobsStarted(), "no Spark job ran");
        assertFalse(Files.exists(out), "nothing written");
    }

    @Test
    void unparseableVariantIsRefusedNamingIt() {
        RoutingStudyJob job = new RoutingStudyJob();
        new CommandLine(job).parseArgs("--model", "m", "--input", "in.json", "--out", "o", "--variants",
                "top-k:1,nonsense:3");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> job.resolve(new SparkConf(false)));
        assertTrue(e.getMessage().contains("--variants") && e.getMessage().contains("nonsense"), e.getMessage());
        assertEquals(0, io.moescore.cli.Moescore.run("routing-study-job", "--help"), "a subcommand of moescore");
    }
}
