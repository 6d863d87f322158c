package io.moescore.score;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moescore.TestModels;
import io.moescore.model.WeightEdits;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * score-local on broken copies of the demo model: NaN weights refused (exit 2, tensor named); loaded anyway, every
 * row whose scores are not finite is kept with an error naming the position and null numbers; an overflowing
 * perplexity is the largest finite double; the output is strict JSON throughout.
 */
class NonFiniteScoresTest {
    /** Jackson refusing NaN and Infinity tokens (its default): any in the output fails the parse. */
    static final ObjectMapper STRICT = new ObjectMapper();
    static final String INPUT = "{\"id\": 1, \"tokens\": [10, 20, 30, 40]}\n{\"id\": 2, \"tokens\": [7]}\n"
            + "{\"id\": 3, \"tokens\": [5, 6, 7, 8, 9, 10, 11]}\n";

    @TempDir
    Path tmp;
    final ByteArrayOutputStream log = new ByteArrayOutputStream();

    Path demoCopy() throws IOException {
        return TestModels.demoCopy(tmp.resolve("model"));
    }

    LocalScoreOptions options(Path model, boolean allowNonfinite) throws IOException {
        Path input = Files.writeString(tmp.resolve("in.jsonl"), INPUT);
        return new LocalScoreOptions(model, input, tmp.resolve("out.jsonl"), true, ScoreSettings.DEFAULTS
                .with(ScoreSettings.BACKEND, "cpu").with(ScoreSettings.TOKEN_LOGPROBS, true)
                .with(ScoreSettings.TOP_K, 2).with(ScoreSettings.BATCH_TOKENS, 4096)
                .with(ScoreSettings.CPU_THREADS, 2).with(ScoreSettings.ALLOW_NONFINITE, allowNonfinite));
    }

    /**
     * Runs score-local with {@code --allow-nonfinite} (the setting, which reaches Engine.load through LoadOptions);
     * returns the output lines, parsed strictly.
     */
    List<JsonNode> scoreAllowingNonfinite(Path model) throws IOException {
        LocalScoreOptions options = options(model, true);
        int exit = new LocalScorer(new PrintStream(log, true, StandardCharsets.UTF_8)).run(options);
        String said = log.toString(StandardCharsets.UTF_8);
        assertTrue(exit == LocalScorer.EXIT_OK || exit == LocalScorer.EXIT_ROW_ERRORS, "exit " + exit + ": " + said);
        List<JsonNode> rows = new ArrayList<>();
        for (String line : Files.readAllLines(options.output())) {
            // no number spelled as a string; NaN / Infinity tokens would fail the strict parse below
            assertFalse(line.matches(".*\"(NaN|-?Infinity)\".*"), line);
            rows.add(STRICT.readTree(line));
        }
        assertFalse(STRICT.isEnabled(JsonParser.Feature.ALLOW_NON_NUMERIC_NUMBERS));
        return rows;
    }

    @Test
    void nanWeightsAreRefusedWithExitTwo() throws IOException {
        Path model = demoCopy();
        WeightEdits.set(model, "lm_head.weight", 123L * 192 + 5, Float.NaN);
        int exit = new LocalScorer(new PrintStream(log, true, StandardCharsets.UTF_8)).run(options(model, false));
        assertEquals(LocalScorer.EXIT_BAD_INVOCATION, exit);
        String said = log.toString(StandardCharsets.UTF_8);
        assertTrue(said.contains("lm_head.weight") && said.contains("[123, 5]"), said);
    }

    @Test
    void aNanLmHeadRowFlagsEveryScoredRowAndKeepsIt() throws IOException {
        Path model = demoCopy();
        // one NaN logit makes every position's log-softmax NaN
        WeightEdits.set(model, "lm_head.weight", 123L * 192 + 5, Float.NaN);
        List<JsonNode> rows = scoreAllowingNonfinite(model);
        assertEquals(3, rows.size(), "every row kept");
        for (int i : new int[] {0, 2}) {
            JsonNode row = rows.get(i);
            assertTrue(row.get("error").asText().contains("non-finite score")
                    && row.get("error").asText().contains("position 1"), row.toString());
            for (String field : new String[] {"sum_logprob", "mean_nll", "perplexity", "token_logprobs",
                "top_tokens"}) {
                assertTrue(row.get(field).isNull(), field + " of " + row);
            }
        }
        // a one-token row predicts nothing: no log-prob to be NaN, no error
        assertTrue(rows.get(1).get("error").isNull(), rows.get(1).toString());
        assertEquals(0.0, rows.get(1).get("sum_logprob").asDouble());
    }

    @Test
    void nanInAnExpertNeverIndexesTheRouterWithMinusOne() throws IOException {
        Path model = demoCopy();
        // a NaN router row: logit 3 NaN for every token, so every token's routing is undefined (router: experts
        // 0..k-1, NaN gates), and every scored row comes out non-finite instead of an ArrayIndexOutOfBounds
        WeightEdits.set(model, "model.layers.1.block_sparse_moe.gate.weight", 3L * 192, Float.NaN);
        List<JsonNode> rows = scoreAllowingNonfinite(model);
        assertEquals(3, rows.size());
        assertTrue(rows.get(0).get("error").asText().contains("position 1"), rows.get(0).toString());
        assertTrue(rows.get(2).get("error").asText().contains("position 1"), rows.get(2).toString());
    }

    @Test
    void anOverflowingPerplexityIsTheLargestFiniteDouble() throws IOException {
        Path model = demoCopy();
        // lm_head x 3000: log-probs of order -1e4, still finite floats, whose mean NLL overflows exp()
        WeightEdits.scale(model, "lm_head.weight", 3000f);
        List<JsonNode> rows = scoreAllowingNonfinite(model);
        for (int i : new int[] {0, 2}) {
            JsonNode row = rows.get(i);
            assertTrue(row.get("error").isNull(), row.toString());
            double meanNll = row.get("mean_nll").asDouble();
            assertTrue(meanNll > 709.79 && Double.isFinite(meanNll), row.toString());
            assertEquals(Double.MAX_VALUE, row.get("perplexity").asDouble(), row.toString());
            assertEquals(-meanNll * (row.get("num_tokens").asInt() - 1), row.get("sum_logprob").asDouble(),
                    1e-9 * meanNll);
        }
        assertTrue(Files.readString(tmp.resolve("out.jsonl")).contains("1.7976931348623157E308"));
    }
}
