package io.moescore.score;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.api.io.TempDir;

/**
 * The single-process scorer on the CPU gives, to the last bit, the scores main's scorer gave at commit 99952cb
 * (its greedy in-order batches) on every transformers fixture and the demo model, whatever the batch size: the
 * length-sorted {@link BatchPlanner} changes which rows share a batch, never a score, and rows stay in input order.
 */
class BitIdenticalScoresTest {
    static final ObjectMapper JSON = new ObjectMapper();
    @TempDir
    Path dir;

    static List<Path> models() {
        return GoldenInputs.models().toList();
    }

    @ParameterizedTest
    @MethodSource("models")
    void scoresEqualMainsAtEveryBatchSize(Path model) throws IOException {
        Path input = GoldenInputs.write(model, dir.resolve("in.jsonl"));
        List<JsonNode> golden = read(GoldenInputs.golden(model));
        for (int batchTokens : new int[] {1, 300, 8192}) {
            Path output = dir.resolve("out-" + batchTokens + ".jsonl");
            ByteArrayOutputStream log = new ByteArrayOutputStream();
            int code = new LocalScorer(new PrintStream(log, true, StandardCharsets.UTF_8)).run(
                    new LocalScoreOptions(model, input, output, false, ScoreSettings.DEFAULTS
                            .with(ScoreSettings.BACKEND, "cpu").with(ScoreSettings.CPU_THREADS, 2)
                            .with(ScoreSettings.TOKEN_LOGPROBS, true).with(ScoreSettings.TOP_K, 5)
                            .with(ScoreSettings.BATCH_TOKENS, batchTokens)));
            assertEquals(LocalScorer.EXIT_ROW_ERRORS, code, "the empty row is an error: " + log);
            List<JsonNode> got = read(output);
            assertEquals(golden.size(), got.size());
            for (int i = 0; i < golden.size(); i++) {
                String where = model.getFileName() + " batch tokens " + batchTokens + " line " + (i + 1);
                JsonNode want = golden.get(i);
                JsonNode row = got.get(i);
                assertEquals(want.get("id"), row.get("id"), where + ": input order");
                assertEquals(want.get("error"), row.get("error"), where);
                for (String field : List.of("num_tokens", "sum_logprob", "mean_nll", "perplexity", "top_tokens")) {
                    assertEquals(want.get(field), row.get(field), where + " " + field);
                }
                JsonNode wantLp = want.get("token_logprobs");
                JsonNode gotLp = row.get("token_logprobs");
                assertEquals(wantLp.size(), gotLp.size(), where);
                for (int t = 0; t < wantLp.size(); t++) {
                    assertEquals(Float.floatToRawIntBits(wantLp.get(t).floatValue()),
                            Float.floatToRawIntBits(gotLp.get(t).floatValue()), where + " token_logprobs[" + t + "]: "
                                    + wantLp.get(t) + " vs " + gotLp.get(t));
                }
            }
        }
    }

    static List<JsonNode> read(Path file) throws IOException {
        List<JsonNode> rows = new ArrayList<>();
        for (String line : Files.readAllLines(file)) {
            rows.add(JSON.readTree(line));
        }
        return rows;
    }
}
