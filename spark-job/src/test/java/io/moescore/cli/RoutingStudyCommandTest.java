package io.moescore.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moescore.routing.RoutingSpec;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code moescore routing-study} on the demo model (CPU): the numbers that must hold exactly, files, refusals. */
public class RoutingStudyCommandTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    private Path input(int rows, int tokens) throws Exception {
        return demoRows(dir.resolve("in.jsonl"), rows, tokens);
    }

    /**
     * Writes the first {@code rows} rows of the demo input, each cut to {@code tokens} tokens, to {@code file} (JSON
     * lines: score-local's input, and the Spark job's).
     */
    public static Path demoRows(Path file, int rows, int tokens) throws Exception {
        Path demo = MoescoreCliTest.demoModel().getParent().resolve("input.jsonl");
        StringBuilder out = new StringBuilder();
        for (String line : Files.readAllLines(demo).subList(0, rows)) {
            ObjectNode row = (ObjectNode) JSON.readTree(line);
            ArrayNode cut = JSON.createArrayNode();
            for (int i = 0; i < Math.min(tokens, row.get("tokens").size()); i++) {
                cut.add(row.get("tokens").get(i));
            }
            row.set("tokens", cut);
            out.append(JSON.writeValueAsString(row)).append('\n');
        }
        return Files.writeString(file, out.toString());
    }

    private record Ran(int code, String stdout, String stderr) {
    }

    private static Ran run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        PrintStream stdout = System.out;
        PrintStream stderr = System.err;
        int code;
        try {
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            code = Moescore.run(args);
        } finally {
            System.setOut(stdout);
            System.setErr(stderr);
        }
        return new Ran(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    private String[] args(Path in, Path out, String variants, String... more) {
        return Stream.concat(Stream.of("routing-study", "--model", MoescoreCliTest.demoModel().toString(), "--input",
                in.toString(), "--out", out.toString(), "--variants", variants, "--backend", "cpu", "--threads", "2",
                "--batch-tokens", "64"), Stream.of(more)).toArray(String[]::new);
    }

    @Test
    void studiesEachVariantAgainstTheModelsRouter() throws Exception {
        Path in = input(5, 40);
        Path out = dir.resolve("study");
        Ran ran = run(args(in, out, "top-k:1,top-k:2,batch-top-k:2:1,batch-top-k:2", "--propose-drops", "2",
                "--repeats", "2"));
        assertEquals(0, ran.code(), ran.stderr());
        JsonNode study = JSON.readTree(out.resolve("routing_study.json").toFile());
        assertTrue(study.get("notes").toString().contains("the median of 2 run(s)"), study.get("notes").toString());
        Map<String, JsonNode> by = new HashMap<>();
        study.get("variants").forEach(v -> by.put(v.get("variant").asText(), v));
        assertEquals("model", study.get("variants").get(0).get("variant").asText(), "the baseline comes first");
        assertEquals(6, study.get("variants").size(), study.toString());
        assertEquals(5, study.get("rows").asLong());

        JsonNode model = by.get("model");
        assertEquals(1.0, model.get("perplexity_ratio").asDouble(), 0.0);
        assertEquals(1.0, model.get("expert_flop_share").asDouble(), 0.0);
        assertEquals(5 * 39, model.get("predicted_tokens").asLong());
        // 4 MoE layers, 2 experts per token: the pairs the engine reported routing
        assertEquals(4L * 2 * 5 * 40, model.get("routed_token_expert_pairs").asLong());

        JsonNode topK2 = by.get("top-k:2");  // the model's own k: the same router
        assertEquals(1.0, topK2.get("perplexity_ratio").asDouble(), 0.0);
        assertEquals(0, topK2.get("top1_changed_rows").asLong());
        assertEquals(5, topK2.get("top1_compared_rows").asLong());
        assertEquals(1.0, topK2.get("expert_flop_share").asDouble(), 0.0);

        JsonNode topK1 = by.get("top-k:1");
        assertEquals(0.5, topK1.get("expert_flop_share").asDouble(), 0.0, "every token routed to 1 expert, not 2");
        assertNotEquals(model.get("perplexity").asDouble(), topK1.get("perplexity").asDouble());
        assertNotEquals(1.0, topK1.get("perplexity_ratio").asDouble());

        // a block of one token: each token's own top-2, the model's gates
        JsonNode block1 = by.get("batch-top-k:2:1");
        assertEquals(1.0, block1.get("perplexity_ratio").asDouble(), 1e-6);
        assertEquals(1.0, block1.get("expert_flop_share").asDouble(), 0.0);
        assertFalse(block1.get("batch_dependent_scores").asBoolean());
        JsonNode batch = by.get("batch-top-k:2");
        assertTrue(batch.get("batch_dependent_scores").asBoolean(), batch.toString());
        assertFalse(model.get("batch_dependent_scores").asBoolean());

        // the proposed drops: 2 experts of each of the 4 layers, in drop-experts:FILE's format, studied too
        Path drops = out.resolve("proposed_drops.json");
        RoutingSpec dropSpec = RoutingSpec.parse("drop-experts:" + drops);
        assertEquals(List.of(0, 1, 2, 3), dropSpec.dropped().keySet().stream().sorted().toList());
        dropSpec.dropped().values().forEach(e -> assertEquals(2, e.size(), dropSpec.dropped().toString()));
        JsonNode dropped = by.get(dropSpec.toString());
        assertTrue(dropped != null, "the proposal is a variant: " + by.keySet());
        assertEquals(1.0, dropped.get("expert_flop_share").asDouble(), 0.0, "still 2 experts per token");

        String md = Files.readString(out.resolve("routing_study.md"));
        String html = Files.readString(out.resolve("routing_study.html"));
        for (String v : by.keySet()) {
            assertTrue(md.contains("| " + v + " |"), v + " in\n" + md);
            assertTrue(html.contains(v), v);
            assertTrue(ran.stdout().contains("| " + v + " |"), "the table is printed: " + ran.stdout());
            assertTrue(ran.stderr().contains("] " + v + " ..."), "progress per variant: " + ran.stderr());
        }
        assertTrue(html.contains("<svg") && html.contains("Perplexity ratio against speed-up"), html);
        try (Stream<Path> files = Files.list(out)) {
            assertEquals(List.of("proposed_drops.json", "routing_study.html", "routing_study.json",
                    "routing_study.md"), files.map(p -> p.getFileName().toString()).sorted().toList(),
                    "no temporary file left");
        }
        assertEquals(2, run(args(in, out, "top-k:1")).code(), "existing files are refused without --overwrite");
        assertEquals(0, run(args(in, out, "top-k:1", "--overwrite")).code());
    }

    @Test
    void aBadVariantExitsTwoNamingItAndWritesNothing() throws Exception {
        Path in = input(2, 8);
        Path out = dir.resolve("study");
        Ran unknown = run(args(in, out, "top-k:1,bogus:3"));
        assertEquals(2, unknown.code(), unknown.stderr());
        assertTrue(unknown.stderr().contains("--variants 'bogus:3': unknown router 'bogus'"), unknown.stderr());
        Ran tooMany = run(args(in, out, "top-k:9"));
        assertEquals(2, tooMany.code(), tooMany.stderr());
        assertTrue(tooMany.stderr().contains("top-k:9: 9 is more than the model's 8 experts"), tooMany.stderr());
        assertTrue(tooMany.stderr().contains("--variants"), tooMany.stderr());
        Ran deterministic = run(args(in, out, "batch-top-k:2", "--deterministic"));
        assertEquals(2, deterministic.code(), deterministic.stderr());
        assertTrue(deterministic.stderr().contains("refuses --routing batch-top-k:2"), deterministic.stderr());
        Ran repeats = run(args(in, out, "top-k:1", "--repeats", "0"));
        assertEquals(2, repeats.code(), repeats.stderr());
        assertTrue(repeats.stderr().contains("--repeats"), repeats.stderr());
        Ran drops = run(args(in, out, "top-k:1", "--propose-drops", "7"));
        assertEquals(2, drops.code(), drops.stderr());
        assertTrue(drops.stderr().contains("--propose-drops 7"), drops.stderr());
        Ran noModel = run("routing-study", "--input", in.toString(), "--out", out.toString(), "--variants", "top-k:1");
        assertEquals(2, noModel.code());
        assertTrue(noModel.stderr().contains("--model"), noModel.stderr());
        Ran noInput = run(args(dir.resolve("missing.jsonl"), out, "top-k:1"));
        assertEquals(2, noInput.code());
        assertTrue(noInput.stderr().contains("--input " + dir.resolve("missing.jsonl")), noInput.stderr());
        assertFalse(Files.exists(out), "nothing written");
    }
}
