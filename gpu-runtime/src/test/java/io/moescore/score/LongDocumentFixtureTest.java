package io.moescore.score;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moescore.TestModels;
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
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * score-local on the CPU against transformers' float32 references made by {@value #COMMAND}: strided perplexity of
 * long documents (every token's log-prob within 2e-4, the windows counted alike), truncation, and continuation
 * log-probs and is_greedy of token and text pairs (the text split into the very tokens lm-evaluation-harness's
 * {@code _encode_pair} gives). Skips, naming the command, while a model's fixture is not committed.
 */
class LongDocumentFixtureTest {
    static final String COMMAND = "python3 gpu-runtime/src/test/python/make_longdoc_fixtures.py";
    static final ObjectMapper JSON = new ObjectMapper();
    @TempDir
    Path dir;

    /** The CPU engine: every log-prob within 2e-4; is_greedy held unless the logits are within 1e-3 of a tie. */
    Checks cpu() {
        return new Checks(dir, ScoreSettings.DEFAULTS.with(ScoreSettings.BACKEND, "cpu")
                .with(ScoreSettings.CPU_THREADS, 2), 2e-4, 1e-3);
    }

    @ParameterizedTest
    @MethodSource("models")
    void stridedPerplexityMatchesTransformers(Path model) throws IOException {
        cpu().strided(model);
    }

    @ParameterizedTest
    @MethodSource("models")
    void truncationMatchesTransformers(Path model) throws IOException {
        cpu().truncated(model);
    }

    @ParameterizedTest
    @MethodSource("models")
    void continuationsMatchTransformersAndLmEvaluationHarness(Path model) throws IOException {
        cpu().continuations(model);
    }

    static Stream<Path> models() {
        return Stream.concat(TestModels.hfFixtures().stream(), Stream.of(TestModels.demoModel()));
    }

    static JsonNode fixture(Path model) throws IOException {
        Path file = TestModels.repoRoot().resolve("gpu-runtime/src/test/resources/longdocs")
                .resolve(model.getFileName() + ".json");
        Assumptions.assumeTrue(Files.exists(file), () -> file + " is not generated yet: run `" + COMMAND
                + "` from the repository root (GPU machine) and commit gpu-runtime/src/test/resources/longdocs");
        return JSON.readTree(file.toFile());
    }

    /**
     * The checks against the fixtures, on a backend.
     *
     * @param base         the backend's settings
     * @param tolerance    bound on each token's |log-prob error| (sums: times the tokens summed)
     * @param greedyMargin is_greedy is held where the best logit leads the second by more than this
     */
    record Checks(Path dir, ScoreSettings base, double tolerance, double greedyMargin) {
        /** Runs score-local on {@code rows} (JSON objects) and returns its output lines. */
        List<JsonNode> score(Path model, List<ObjectNode> rows, ScoreSettings settings) throws IOException {
            Path input = dir.resolve("in-" + System.nanoTime() + ".jsonl");
            List<String> lines = new ArrayList<>();
            for (ObjectNode row : rows) {
                lines.add(JSON.writeValueAsString(row));
            }
            Files.write(input, lines);
            Path output = dir.resolve("out-" + System.nanoTime() + ".jsonl");
            ByteArrayOutputStream log = new ByteArrayOutputStream();
            int code = new LocalScorer(new PrintStream(log, true, StandardCharsets.UTF_8)).run(new LocalScoreOptions(
                    model, input, output, false, settings));
            assertEquals(LocalScorer.EXIT_OK, code, log.toString());
            List<JsonNode> out = new ArrayList<>();
            for (String line : Files.readAllLines(output)) {
                out.add(JSON.readTree(line));
            }
            return out;
        }

        static ObjectNode row(int id) {
            return JSON.createObjectNode().put("id", id);
        }

        void strided(Path model) throws IOException {
            JsonNode fx = fixture(model);
            List<ObjectNode> rows = new ArrayList<>();
            for (JsonNode doc : fx.get("strided")) {
                rows.add(row(rows.size()).set("tokens", doc.get("tokens")));
            }
            List<JsonNode> got = score(model, rows, base.with(ScoreSettings.LONG_ROWS, LongRows.STRIDE)
                    .with(ScoreSettings.STRIDE, fx.get("stride").asInt()).with(ScoreSettings.TOKEN_LOGPROBS, true));
            double worst = 0;
            for (int d = 0; d < rows.size(); d++) {
                JsonNode want = fx.get("strided").get(d);
                JsonNode row = got.get(d);
                String where = model.getFileName() + " document " + d;
                assertTrue(row.get("error").isNull(), where + ": " + row);
                assertEquals(want.get("tokens").size(), row.get("num_tokens").asInt(), where);
                assertEquals(want.get("num_windows").asInt(), row.get("num_windows").asInt(), where + " windows");
                JsonNode lp = row.get("token_logprobs");
                assertEquals(want.get("token_logprobs").size(), lp.size(), where);
                for (int t = 0; t < lp.size(); t++) {
                    double err = Math.abs(lp.get(t).asDouble() - want.get("token_logprobs").get(t).asDouble());
                    worst = Math.max(worst, err);
                    assertTrue(err <= tolerance, where + " token " + (t + 1) + ": ours " + lp.get(t)
                            + ", transformers " + want.get("token_logprobs").get(t));
                }
                int predicted = lp.size();
                assertEquals(want.get("sum_logprob").asDouble(), row.get("sum_logprob").asDouble(),
                        tolerance * predicted, where);
                double perplexity = row.get("perplexity").asDouble();
                assertEquals(Math.exp(-want.get("sum_logprob").asDouble() / predicted), perplexity,
                        perplexity * tolerance * 2, where + " perplexity");
            }
            System.out.printf("%s %s: strided, worst |log-prob error| %.2e%n", base.backend(), model.getFileName(),
                    worst);
        }

        void truncated(Path model) throws IOException {
            JsonNode fx = fixture(model);
            JsonNode want = fx.get("truncated").get(0);
            JsonNode row = score(model, List.of(row(0).set("tokens", want.get("tokens"))),
                    base.with(ScoreSettings.LONG_ROWS, LongRows.TRUNCATE)).get(0);
            assertEquals(want.get("num_tokens").asInt(), row.get("num_tokens").asInt());
            assertTrue(row.get("truncated").asBoolean());
            assertEquals(want.get("sum_logprob").asDouble(), row.get("sum_logprob").asDouble(),
                    tolerance * want.get("num_tokens").asInt());
        }

        void continuations(Path model) throws IOException {
            JsonNode fx = fixture(model);
            List<ObjectNode> rows = new ArrayList<>();
            List<JsonNode> wants = new ArrayList<>();
            for (JsonNode pair : fx.get("continuations")) {
                ObjectNode row = row(rows.size());
                row.set("context", pair.get("context"));
                row.set("continuation", pair.get("continuation"));
                rows.add(row);
                wants.add(pair);
            }
            for (JsonNode pair : fx.get("text_continuations")) {
                rows.add(row(rows.size()).put("context", pair.get("context").asText())
                        .put("continuation", pair.get("continuation").asText()));
                wants.add(pair);
            }
            if (fx.get("text_continuations").size() > 0) {
                try (TextTokenizer tokenizer = TextTokenizer.load(model)) {
                    for (JsonNode pair : fx.get("text_continuations")) {
                        Continuations.Pair ours = Continuations.ofText(tokenizer, pair.get("context").asText(),
                                pair.get("continuation").asText());
                        String where = model.getFileName() + " text pair " + pair.get("context") + " + "
                                + pair.get("continuation");
                        assertEquals(ints(pair.get("context_tokens")),
                                Arrays.toString(Arrays.copyOf(ours.tokens(), ours.contextLength())), where);
                        assertEquals(ints(pair.get("continuation_tokens")), Arrays.toString(Arrays.copyOfRange(
                                ours.tokens(), ours.contextLength(), ours.tokens().length)), where);
                    }
                }
            }
            List<JsonNode> got = score(model, rows, base.with(ScoreSettings.LONG_ROWS, LongRows.TRUNCATE));
            for (int i = 0; i < rows.size(); i++) {
                JsonNode want = wants.get(i);
                JsonNode row = got.get(i);
                String where = model.getFileName() + " pair " + i;
                assertTrue(row.get("error").isNull(), where + ": " + row);
                int k = want.has("continuation_tokens") ? want.get("continuation_tokens").size()
                        : want.get("continuation").size();
                assertEquals(k, row.get("continuation_tokens").asInt(), where);
                assertEquals(want.get("continuation_logprob").asDouble(), row.get("continuation_logprob").asDouble(),
                        tolerance * k, where);
                assertEquals(want.get("truncated").asBoolean(), row.get("truncated").asBoolean(), where);
                if (want.get("min_margin").asDouble() > greedyMargin) {  // a near tie may go either way
                    assertEquals(want.get("is_greedy").asBoolean(), row.get("is_greedy").asBoolean(), where);
                }
            }
        }
    }

    static String ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).asInt();
        }
        return Arrays.toString(out);
    }
}
