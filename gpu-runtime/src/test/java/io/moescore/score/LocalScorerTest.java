package io.moescore.score;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moescore.TestModels;
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

/** The single-process scorer end to end on the demo model: bad rows get errors, good rows are unaffected. */
class LocalScorerTest {
    static final ObjectMapper JSON = new ObjectMapper();
    @TempDir
    Path dir;
    final ByteArrayOutputStream log = new ByteArrayOutputStream();

    int run(Path model, Path input, Path output, int batchTokens) {
        return new LocalScorer(new PrintStream(log, true, StandardCharsets.UTF_8)).run(
                new LocalScoreOptions(model, input, output, false, ScoreSettings.DEFAULTS.with(ScoreSettings.BACKEND, "cpu")
                        .with(ScoreSettings.TOKEN_LOGPROBS, true).with(ScoreSettings.TOP_K, 3)
                        .with(ScoreSettings.BATCH_TOKENS, batchTokens).with(ScoreSettings.CPU_THREADS, 2)));
    }

    List<JsonNode> read(Path output) throws IOException {
        List<JsonNode> rows = new ArrayList<>();
        for (String line : Files.readAllLines(output)) {
            rows.add(JSON.readTree(line));
        }
        return rows;
    }

    @Test
    void badRowsGetErrorsAndTheRestAreScoredAsIfAlone() throws IOException {
        String longSeq = "[" + "1,".repeat(1024) + "1]"; // 1025 tokens, max_position_embeddings is 1024
        Path input = dir.resolve("in.jsonl");
        Files.writeString(input, String.join("\n",
                "{\"id\": 1, \"tokens\": [10, 20, 30, 40]}",
                "{\"id\": \"oov\", \"tokens\": [10, 4096, 30]}",
                "{\"id\": 3, \"tokens\": []}",
                "this is not json",
                "{\"id\": 5, \"tokens\": " + longSeq + "}",
                "{\"id\": 6, \"tokens\": [1.5, 2]}",
                "{\"id\": 7, \"tokens\": [7]}",
                "{\"id\": 8, \"tokens\": [5, 6, 7, 8, 9, 10, 11]}") + "\n");
        Path output = dir.resolve("out.jsonl");
        assertEquals(LocalScorer.EXIT_ROW_ERRORS, run(TestModels.demoModel(), input, output, 8));
        List<JsonNode> rows = read(output);
        assertEquals(8, rows.size(), "one output line per input line");
        assertEquals(1, rows.get(0).get("id").asInt());
        assertTrue(rows.get(0).get("error").isNull());
        assertEquals(3, rows.get(0).get("token_logprobs").size());
        assertEquals(3, rows.get(0).get("top_tokens").size());
        assertEquals("oov", rows.get(1).get("id").asText());
        assertTrue(rows.get(1).get("error").asText().contains("token id 4096 at position 1"), rows.get(1).toString());
        assertTrue(rows.get(2).get("error").asText().contains("empty sequence"));
        assertTrue(rows.get(3).get("error").asText().contains("line 4: not valid JSON"));
        assertTrue(rows.get(4).get("error").asText().contains("longer than the model's max_position_embeddings (1024)"));
        assertTrue(rows.get(5).get("error").asText().contains("tokens[0] = 1.5"));
        // one token: nothing to predict, so no perplexity, but no error either
        assertTrue(rows.get(6).get("error").isNull());
        assertEquals(0.0, rows.get(6).get("sum_logprob").asDouble());
        assertTrue(rows.get(6).get("perplexity").isNull());
        assertTrue(rows.get(7).get("error").isNull());

        // the good rows alone, in one batch, give the same numbers to the last bit
        Path clean = dir.resolve("clean.jsonl");
        Files.writeString(clean, "{\"id\": 1, \"tokens\": [10, 20, 30, 40]}\n{\"id\": 7, \"tokens\": [7]}\n"
                + "{\"id\": 8, \"tokens\": [5, 6, 7, 8, 9, 10, 11]}\n");
        Path cleanOut = dir.resolve("clean-out.jsonl");
        assertEquals(LocalScorer.EXIT_OK, run(TestModels.demoModel(), clean, cleanOut, 100_000));
        List<JsonNode> expected = read(cleanOut);
        assertEquals(expected.get(0), rows.get(0));
        assertEquals(expected.get(1), rows.get(6));
        assertEquals(expected.get(2), rows.get(7));

        JsonNode summary = JSON.readTree(LocalScorer.summaryPath(output).toFile());
        assertEquals(8, summary.get("rows").asInt());
        assertEquals(5, summary.get("rows_with_errors").asInt());
        assertEquals(4, summary.get("expert_tokens_per_layer").size());
        assertEquals("cpu", summary.get("settings").get("backend").asText(), summary.toString());
        assertEquals(8, summary.get("settings").get("batchTokens").asInt());
    }

    @Test
    void malformedBytesAndWrongTypesAreErrorsOfTheirLineAndTheRestIsScored() throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        byte[] bom = {(byte) 0xEF, (byte) 0xBB, (byte) 0xBF};
        bytes.writeBytes(bom);
        bytes.writeBytes("{\"id\": \"bom\", \"tokens\": [1, 2, 3]}\r\n".getBytes(StandardCharsets.UTF_8));
        bytes.writeBytes("{\"id\": \"caf\u00e9\", \"tokens\": [4, 5, 6]}\n".getBytes(StandardCharsets.UTF_8));
        bytes.writeBytes("{\"id\": \"x".getBytes(StandardCharsets.UTF_8));
        bytes.write(0xFF);                                       // line 3: a byte no UTF-8 text holds
        bytes.writeBytes("\", \"tokens\": [1, 2]}\n".getBytes(StandardCharsets.UTF_8));
        bytes.writeBytes("{\"id\": 4, \"tokens\": \"1 2 3\"}\n".getBytes(StandardCharsets.UTF_8));
        bytes.writeBytes("{\"id\": 5, \"tokens\": null}\n".getBytes(StandardCharsets.UTF_8));
        bytes.writeBytes("{\"id\": {\"a\": 1}, \"tokens\": [1, 2]}\n".getBytes(StandardCharsets.UTF_8));
        bytes.writeBytes("{\"id\": 7, \"tokens\": [1, 2]} {\"id\": 8}\n".getBytes(StandardCharsets.UTF_8));
        bytes.writeBytes(bom);                                   // a BOM is skipped on line 1 only
        bytes.writeBytes("{\"id\": 8, \"tokens\": [1, 2]}\n".getBytes(StandardCharsets.UTF_8));
        bytes.writeBytes("{\"id\": 9, \"tokens\": [7, 8, 9]}\n".getBytes(StandardCharsets.UTF_8));
        bytes.write("{\"id\": \"\u20ac".getBytes(StandardCharsets.UTF_8), 0, 10); // line 10 ends inside a character
        Path input = dir.resolve("bytes.jsonl");
        Files.write(input, bytes.toByteArray());
        Path output = dir.resolve("bytes-out.jsonl");
        assertEquals(LocalScorer.EXIT_ROW_ERRORS, run(TestModels.demoModel(), input, output, 8),
                log.toString(StandardCharsets.UTF_8));
        List<JsonNode> rows = read(output);
        assertEquals(10, rows.size(), "one output line per input line");
        String[] errors = {null, null,
            "line 3: not valid UTF-8: byte 0xFF at byte 10 of the line",
            "line 4: \"tokens\" is a string (\"1 2 3\"), not a list of token ids",
            "line 5: \"tokens\" is null, not a list of token ids",
            "line 6: \"id\" is an object ({\"a\":1}); an id is a number, a string or null",
            "line 7: not valid JSON (column ",
            "line 8: not valid JSON (column 1: Unexpected character ('\ufeff'",
            null,
            "line 10: not valid UTF-8: byte 0xE2 at byte 9 of the line"};
        for (int i = 0; i < errors.length; i++) {
            JsonNode error = rows.get(i).get("error");
            if (errors[i] == null) {
                assertTrue(error.isNull(), "row " + (i + 1) + ": " + rows.get(i));
                assertTrue(rows.get(i).get("sum_logprob").isNumber());
            } else {
                assertTrue(error.asText().startsWith(input + " " + errors[i]), "row " + (i + 1) + ": " + error);
            }
        }
        assertEquals("bom", rows.get(0).get("id").asText());
        assertEquals("caf\u00e9", rows.get(1).get("id").asText());
        assertEquals(9, rows.get(8).get("id").asInt());
        assertEquals(4, rows.get(3).get("id").asInt(), "the id is kept when the line parsed");
        assertTrue(rows.get(6).get("error").asText().contains("Trailing token"), rows.get(6).toString());
    }

    @Test
    void anIdLongerThanJacksonsDefaultLimitIsScoredAndWrittenBackWhole() throws IOException {
        String id = "i".repeat(25_000_000);  // Jackson's default max string length is 20M chars
        Path input = dir.resolve("long-id.jsonl");
        Files.writeString(input, "{\"id\": \"" + id + "\", \"tokens\": [1, 2, 3]}\n{\"id\": 2, \"tokens\": [1, 2]}\n");
        Path output = dir.resolve("long-id-out.jsonl");
        assertEquals(LocalScorer.EXIT_OK, run(TestModels.demoModel(), input, output, 8192),
                log.toString(StandardCharsets.UTF_8));
        List<String> lines = Files.readAllLines(output);
        assertEquals(2, lines.size());
        assertTrue(lines.get(0).startsWith("{\"id\":\"" + id + "\",\"num_tokens\":3,"), "the id comes back whole");
        assertTrue(lines.get(1).startsWith("{\"id\":2,"));
    }

    @Test
    void aLineLongerThanTheLimitIsThatLinesErrorAndTheNextReadsAsUsual() throws IOException {
        byte[] text = ("{\"id\": 1}\n" + "x".repeat(200_000) + "\r\n\n{\"id\": 2}").getBytes(StandardCharsets.UTF_8);
        try (Utf8Lines lines = new Utf8Lines(new java.io.ByteArrayInputStream(text), 100_000)) {
            assertEquals(new Utf8Lines.Line(1, "{\"id\": 1}", null), lines.next());
            assertEquals(new Utf8Lines.Line(2, null, "longer than 100000 bytes"), lines.next());
            assertEquals(new Utf8Lines.Line(3, "", null), lines.next());
            assertEquals(new Utf8Lines.Line(4, "{\"id\": 2}", null), lines.next(), "no newline at the end");
            assertEquals(null, lines.next());
        }
    }

    @Test
    void unusableModelOrInputExitsWithTwoAndSaysWhy() throws IOException {
        Path input = dir.resolve("in.jsonl");
        Files.writeString(input, "{\"id\": 1, \"tokens\": [1, 2]}\n");
        assertEquals(LocalScorer.EXIT_BAD_INVOCATION, run(dir.resolve("no-such-model"), input,
                dir.resolve("out/o.jsonl"), 8));
        assertTrue(log.toString(StandardCharsets.UTF_8).contains("no-such-model"), log.toString(StandardCharsets.UTF_8));
        assertTrue(!Files.exists(dir.resolve("out")), "nothing written, not even the output's folder or lock");
        assertEquals(LocalScorer.EXIT_BAD_INVOCATION,
                run(TestModels.demoModel(), dir.resolve("missing.jsonl"), dir.resolve("o.jsonl"), 8));
        assertTrue(log.toString(StandardCharsets.UTF_8).contains("missing.jsonl"));
    }
}
