package io.moescore.score;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moescore.TestModels;
import io.moescore.backend.cpu.CpuBackend;
import io.moescore.batch.ExpertLoad;
import io.moescore.batch.RowScore;
import io.moescore.engine.Engine;
import io.moescore.engine.ScoreOptions;
import io.moescore.model.TextTokenizer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * score-local with long rows and continuation rows: the output lines carry num_windows and truncated (long rows not
 * refused) and the continuation fields (continuation lines), with the numbers {@link RowPlan} gives; bad rows name
 * their line and field; a stride the model cannot take is refused with exit 2 before anything is written.
 */
class LongRowsAndContinuationsLocalTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final Path OLMOE = TestModels.hfFixtures().stream().filter(p -> p.endsWith("olmoe-fp32")).findFirst()
            .orElseThrow();
    @TempDir
    Path dir;
    final ByteArrayOutputStream log = new ByteArrayOutputStream();

    int run(Path model, Path input, Path output, ScoreSettings settings) {
        return new LocalScorer(new PrintStream(log, true, StandardCharsets.UTF_8)).run(
                new LocalScoreOptions(model, input, output, false, settings));
    }

    static ScoreSettings cpu() {
        return ScoreSettings.DEFAULTS.with(ScoreSettings.BACKEND, "cpu").with(ScoreSettings.CPU_THREADS, 2);
    }

    static List<JsonNode> read(Path output) throws IOException {
        List<JsonNode> rows = new ArrayList<>();
        for (String line : Files.readAllLines(output)) {
            rows.add(JSON.readTree(line));
        }
        return rows;
    }

    static String ids(int[] tokens) {
        return Arrays.stream(tokens).mapToObj(Integer::toString).collect(Collectors.joining(",", "[", "]"));
    }

    static List<String> fields(JsonNode row) {
        List<String> names = new ArrayList<>();
        row.fieldNames().forEachRemaining(names::add);
        return names;
    }

    @Test
    void longRowsAreStridedOrTruncatedAsAskedAndRefusedByDefault() throws IOException {
        long seed = System.nanoTime();
        System.out.println("long rows seed " + seed);
        Random random = new Random(seed);
        int[] longRow = new int[600];
        Arrays.setAll(longRow, i -> random.nextInt(512));
        Path input = dir.resolve("in.jsonl");
        Files.writeString(input, "{\"id\": 1, \"tokens\": " + ids(longRow) + "}\n{\"id\": 2, \"tokens\": [3, 4, 5]}\n");

        Path refused = dir.resolve("refused.jsonl");
        assertEquals(LocalScorer.EXIT_ROW_ERRORS, run(OLMOE, input, refused, cpu()), log.toString());
        JsonNode row = read(refused).get(0);
        assertTrue(row.get("error").asText().contains("longer than the model's max_position_embeddings (256)"));
        assertEquals(List.of("id", "num_tokens", "sum_logprob", "mean_nll", "perplexity", "error"), fields(row),
                "by default the output is as it was: no long-row fields");

        Path strided = dir.resolve("strided.jsonl");
        ScoreSettings stride = cpu().with(ScoreSettings.LONG_ROWS, LongRows.STRIDE).with(ScoreSettings.STRIDE, 100)
                .with(ScoreSettings.TOKEN_LOGPROBS, true);
        assertEquals(LocalScorer.EXIT_OK, run(OLMOE, input, strided, stride), log.toString());
        List<JsonNode> rows = read(strided);
        assertEquals(List.of("id", "num_tokens", "sum_logprob", "mean_nll", "perplexity", "token_logprobs",
                "num_windows", "truncated", "error"), fields(rows.get(0)));
        RowScore want;
        try (CpuBackend backend = new CpuBackend(2); Engine engine = Engine.load(OLMOE, backend)) {
            want = RowPlan.score(engine::score, new int[][] {longRow}, null, stride.rowLimits(256),
                    new ScoreOptions(true, 0), 8192, new ExpertLoad(2, 8))[0];
        }
        assertEquals(600, rows.get(0).get("num_tokens").asInt());
        assertEquals(want.score().sumLogProb(), rows.get(0).get("sum_logprob").asDouble(), 0.0);
        assertEquals(want.score().perplexity(), rows.get(0).get("perplexity").asDouble(), 0.0);
        assertEquals(599, rows.get(0).get("token_logprobs").size());
        assertEquals(5, rows.get(0).get("num_windows").asInt(), "windows at 0, 100, 200, 300, 400 (the last to 600)");
        assertFalse(rows.get(0).get("truncated").asBoolean());
        assertEquals(1, rows.get(1).get("num_windows").asInt(), "a row that fits: one window");

        Path cut = dir.resolve("cut.jsonl");
        assertEquals(LocalScorer.EXIT_OK, run(OLMOE, input, cut,
                cpu().with(ScoreSettings.LONG_ROWS, LongRows.TRUNCATE)), log.toString());
        JsonNode truncated = read(cut).get(0);
        assertEquals(256, truncated.get("num_tokens").asInt());
        assertTrue(truncated.get("truncated").asBoolean());
        assertEquals(1, truncated.get("num_windows").asInt());
        assertFalse(read(cut).get(1).get("truncated").asBoolean());
    }

    @Test
    void aStrideTheModelCannotTakeIsRefusedBeforeAnythingIsWritten() throws IOException {
        Path input = dir.resolve("in.jsonl");
        Files.writeString(input, "{\"id\": 1, \"tokens\": [1, 2, 3]}\n");
        Path output = dir.resolve("out.jsonl");
        assertEquals(LocalScorer.EXIT_BAD_INVOCATION, run(OLMOE, input, output,
                cpu().with(ScoreSettings.LONG_ROWS, LongRows.STRIDE).with(ScoreSettings.STRIDE, 256)));
        assertTrue(log.toString().contains("--stride (stride) 256 is not below the model's context of 256 tokens"),
                log.toString());
        assertFalse(Files.exists(output));
        assertFalse(Files.exists(LocalScorer.summaryPath(output)));
    }

    @Test
    void continuationRowsOfTextAndOfIdsAndTheirErrors() throws IOException {
        Path model = TestModels.demoModel();
        Path input = dir.resolve("pairs.jsonl");
        Files.writeString(input, String.join("\n",
                "{\"id\": \"text\", \"context\": \"def add(a, b):\\n   \", \"continuation\": \" return a + b\"}",
                "{\"id\": \"ids\", \"context\": [10, 20, 30], \"continuation\": [40, 50]}",
                "{\"id\": \"no-cont\", \"context\": \"x = \"}",
                "{\"id\": \"mixed\", \"context\": \"x = \", \"continuation\": [1]}",
                "{\"id\": \"empty\", \"context\": [], \"continuation\": [1]}",
                "{\"id\": \"plain\", \"tokens\": [10, 20, 30, 40, 50]}",
                "{\"id\": \"bad-id\", \"context\": [1, 2.5], \"continuation\": [3]}") + "\n");
        Path output = dir.resolve("out.jsonl");
        assertEquals(LocalScorer.EXIT_ROW_ERRORS, run(model, input, output, cpu()), log.toString());
        List<JsonNode> rows = read(output);
        assertEquals(7, rows.size());
        assertEquals(List.of("id", "num_tokens", "sum_logprob", "mean_nll", "perplexity", "continuation_logprob",
                "continuation_tokens", "is_greedy", "error"), fields(rows.get(0)));
        Continuations.Pair text;
        try (TextTokenizer tokenizer = TextTokenizer.load(model)) {
            text = Continuations.ofText(tokenizer, "def add(a, b):\n   ", " return a + b");
        }
        RowScore[] want;
        try (CpuBackend backend = new CpuBackend(2); Engine engine = Engine.load(model, backend)) {
            want = RowPlan.score(engine::score, new int[][] {text.tokens(), {10, 20, 30, 40, 50}},
                    new int[] {text.contextLength(), 3}, cpu().rowLimits(1024), ScoreOptions.SUMS_ONLY, 8192,
                    new ExpertLoad(engine.config().numLayers(), engine.config().numExperts()));
        }
        for (int i = 0; i < 2; i++) {
            JsonNode row = rows.get(i);
            assertTrue(row.get("error").isNull(), row.toString());
            assertEquals(want[i].continuationLogProbOrNull(), row.get("continuation_logprob").asDouble(), 0.0);
            assertEquals(want[i].continuationTokens(), row.get("continuation_tokens").asInt());
            assertEquals(want[i].isGreedyOrNull(), row.get("is_greedy").asBoolean());
            assertEquals(want[i].score().sumLogProb(), row.get("sum_logprob").asDouble(), 0.0);
        }
        assertEquals(text.tokens().length, rows.get(0).get("num_tokens").asInt(), "context and continuation");
        assertEquals(2, rows.get(1).get("continuation_tokens").asInt());
        assertEquals(in(input) + " line 3: no \"continuation\" field: a continuation row needs a \"context\" and a "
                + "\"continuation\", both text or both lists of token ids", rows.get(2).get("error").asText());
        assertTrue(rows.get(2).get("is_greedy").isNull());
        assertTrue(rows.get(2).get("continuation_logprob").isNull());
        assertTrue(rows.get(3).get("error").asText().startsWith(in(input) + " line 4: \"context\" is a string"),
                rows.get(3).toString());
        assertTrue(rows.get(4).get("error").asText().startsWith(in(input) + " line 5: context has no tokens"),
                rows.get(4).toString());
        assertEquals(List.of("id", "num_tokens", "sum_logprob", "mean_nll", "perplexity", "error"),
                fields(rows.get(5)), "a plain row among continuation rows keeps the plain fields");
        assertEquals(in(input) + " line 7: context[1] = 2.5 is not a 32-bit integer token id",
                rows.get(6).get("error").asText());
    }

    static String in(Path input) {
        return input.toString();
    }
}
