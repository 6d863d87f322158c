package io.moescore.score;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.moescore.TestModels;
import io.moescore.routing.RoutingSpec;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * --routing on the demo model (Mixtral-style, 8 experts, top-2, renormalised) through the single-process scorer
 * on the CPU: the spellings of the model's own router score bit for bit as the default, other routers change
 * perplexity, and tokens routed to no expert still score.
 */
class RoutingScoresTest {
    @TempDir
    Path dir;
    Path input;

    @BeforeEach
    void input() throws IOException {
        input = GoldenInputs.write(TestModels.demoModel(), dir.resolve("in.jsonl"));
    }

    /** The output rows and summary of scoring the demo input with a --routing spec. */
    record Run(List<JsonNode> rows, JsonNode summary, String log) {
        double meanPerplexity() {
            double sum = 0;
            int n = 0;
            for (JsonNode row : rows) {
                if (row.get("error") == null || row.get("error").isNull()) {
                    sum += row.get("perplexity").asDouble();
                    n++;
                }
            }
            return sum / n;
        }
    }

    Run score(String routing, int batchTokens) throws IOException {
        return score(TestModels.demoModel(), input, routing, batchTokens);
    }

    Run score(Path model, Path in, String routing, int batchTokens) throws IOException {
        Path output = dir.resolve("out-" + Integer.toHexString(routing.hashCode()) + "-" + batchTokens + ".jsonl");
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        int code = new LocalScorer(new PrintStream(log, true, StandardCharsets.UTF_8)).run(
                new LocalScoreOptions(model, in, output, true, ScoreSettings.DEFAULTS
                        .with(ScoreSettings.BACKEND, "cpu").with(ScoreSettings.CPU_THREADS, 2)
                        .with(ScoreSettings.TOKEN_LOGPROBS, true).with(ScoreSettings.BATCH_TOKENS, batchTokens)
                        .with(ScoreSettings.ROUTING, RoutingSpec.parse(routing))));
        String text = log.toString(StandardCharsets.UTF_8);
        assertEquals(LocalScorer.EXIT_ROW_ERRORS, code, routing + ": only the empty row is an error: " + text);
        return new Run(BitIdenticalScoresTest.read(output),
                BitIdenticalScoresTest.JSON.readTree(LocalScorer.summaryPath(output).toFile()), text);
    }

    static void assertBitIdentical(Run want, Run got, String what) {
        assertEquals(want.rows().size(), got.rows().size());
        for (int i = 0; i < want.rows().size(); i++) {
            JsonNode a = want.rows().get(i);
            JsonNode b = got.rows().get(i);
            assertEquals(a.get("error"), b.get("error"), what + " line " + (i + 1));
            assertEquals(a.get("sum_logprob"), b.get("sum_logprob"), what + " line " + (i + 1));
            JsonNode la = a.get("token_logprobs");
            JsonNode lb = b.get("token_logprobs");
            for (int t = 0; la != null && t < la.size(); t++) {
                assertEquals(Float.floatToRawIntBits(la.get(t).floatValue()),
                        Float.floatToRawIntBits(lb.get(t).floatValue()), what + " line " + (i + 1) + " token " + t);
            }
        }
        assertEquals(want.summary().get("expert_tokens_per_layer"), got.summary().get("expert_tokens_per_layer"));
    }

    @Test
    void theModelsOwnRouterSpelledAnyWayScoresBitIdentically() throws IOException {
        Run model = score("model", 8192);
        assertEquals("model", model.summary().get("settings").get("routing").asText());
        assertBitIdentical(model, score("top-k:2", 8192), "top-k:2");
        Path nothing = Files.writeString(dir.resolve("nothing.json"), "{\"0\": [], \"3\": []}");
        Run dropNothing = score("drop-experts:" + nothing, 8192);
        assertBitIdentical(model, dropNothing, "drop-experts with nothing dropped");
        assertEquals("drop-experts:" + nothing, dropNothing.summary().get("settings").get("routing").asText());
        // batch-top-k over blocks of one row is the model's top-k
        assertBitIdentical(model, score("batch-top-k:2:1", 8192), "batch-top-k:2:1");
        assertFalse(model.summary().has("batch_dependent_scores"));
    }

    @Test
    void otherRoutersChangePerplexity() throws IOException {
        Run model = score("model", 8192);
        Run top1 = score("top-k:1", 8192);
        double base = model.meanPerplexity();
        double one = top1.meanPerplexity();
        System.out.printf("RoutingScoresTest demo mean perplexity: model %.4f, top-k:1 %.4f%n", base, one);
        assertTrue(Double.isFinite(one) && one > 1, "top-k:1 perplexity " + one);
        assertNotEquals(base, one, "top-k:1 must change the scores");
        assertEquals(total(model) / 2, total(top1), "top-1 routes half the expert tokens of top-2");
        Path drop = Files.writeString(dir.resolve("drop.txt"), "0: 0 1 2\n1: 7\n");
        Run dropped = score("drop-experts:" + drop, 8192);
        JsonNode layer0 = dropped.summary().get("expert_tokens_per_layer").get(0);
        assertEquals(0, layer0.get(0).asLong() + layer0.get(1).asLong() + layer0.get(2).asLong());
        assertEquals(0, dropped.summary().get("expert_tokens_per_layer").get(1).get(7).asLong());
        assertNotEquals(base, dropped.meanPerplexity());
    }

    @Test
    void tokensRoutedToNoExpertStillScore() throws IOException {
        Run model = score("model", 8192);
        // softmax probabilities above 0.45 of 8 experts: most tokens get one expert or none
        Run threshold = score("softmax:0.45", 8192);
        long routed = total(threshold);
        long tokens = model.summary().get("tokens").asLong();
        System.out.printf("RoutingScoresTest softmax:0.45 routed %d expert tokens for %d tokens x 4 layers; "
                + "mean perplexity %.4f%n", routed, tokens, threshold.meanPerplexity());
        assertTrue(routed < tokens * 4, "some tokens get no expert: " + routed + " of " + tokens * 4);
        for (JsonNode row : threshold.rows()) {
            if (row.get("error") == null || row.get("error").isNull()) {
                assertTrue(Double.isFinite(row.get("sum_logprob").asDouble()), row.toString());
            }
        }
        // a threshold no probability reaches: no expert at all, the MoE blocks add nothing
        Run none = score("sigmoid:0.999999", 8192);
        assertEquals(0, total(none));
        assertTrue(Double.isFinite(none.meanPerplexity()));
        assertNotEquals(model.meanPerplexity(), none.meanPerplexity());
    }

    @Test
    void batchLevelGatingDependsOnTheBatchAndSaysSo() throws IOException {
        Run whole = score("batch-top-k:2", 8192);
        assertTrue(whole.summary().get("batch_dependent_scores").asBoolean());
        Run small = score("batch-top-k:2", 64);
        boolean differs = false;
        for (int i = 0; i < whole.rows().size(); i++) {
            differs |= !whole.rows().get(i).get("sum_logprob").equals(small.rows().get(i).get("sum_logprob"));
        }
        assertTrue(differs, "one expert set per batch: other batches, other scores");
        // blocks of 16 token rows of each row: the same scores whatever the batch
        Run blocks = score("batch-top-k:2:16", 8192);
        assertFalse(blocks.summary().has("batch_dependent_scores"));
        assertBitIdentical(blocks, score("batch-top-k:2:16", 64), "batch-top-k:2:16 at 64 batch tokens");
        assertBitIdentical(blocks, score("batch-top-k:2:16", 1), "batch-top-k:2:16 one row per batch");
        assertNotEquals(score("model", 8192).meanPerplexity(), blocks.meanPerplexity());
    }

    /** Every transformers fixture (Mixtral, Qwen2-MoE with shared experts and raw gates, Qwen3-MoE, OLMoE). */
    static List<Path> fixtures() {
        return TestModels.hfFixtures();
    }

    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.MethodSource("fixtures")
    void fixturesScoreTheirOwnKBitIdenticallyAndRunWithTokensOfNoExpert(Path model) throws IOException {
        Path in = GoldenInputs.write(model, dir.resolve("fixture.jsonl"));
        int k = io.moescore.model.ModelConfig.load(model).topK();
        Run own = score(model, in, "model", 8192);
        assertBitIdentical(own, score(model, in, "top-k:" + k, 8192), model.getFileName() + " top-k:" + k);
        Run none = score(model, in, "sigmoid:0.999999", 8192);
        assertEquals(0, total(none), "no token reaches an expert");
        assertTrue(Double.isFinite(none.meanPerplexity()), model.getFileName().toString());
        assertNotEquals(own.meanPerplexity(), none.meanPerplexity());
    }

    static long total(Run run) {
        long sum = 0;
        for (JsonNode layer : run.summary().get("expert_tokens_per_layer")) {
            for (JsonNode c : layer) {
                sum += c.asLong();
            }
        }
        return sum;
    }
}
