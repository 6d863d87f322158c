package io.moescore.score;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moescore.TestModels;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * The inputs of {@link BitIdenticalScoresTest}: per model (every transformers fixture and the demo model), its
 * reference sequences in reverse order (lengths falling, so a length-sorted plan reorders them) with an empty row
 * among them; the demo model adds its 24 demo rows cut to lengths 1 + 97 i mod 256. Built from committed files
 * only, so the same rows scored by an older build give the golden outputs in src/test/resources/golden.
 */
final class GoldenInputs {
    private GoldenInputs() {
    }

    static Stream<Path> models() {
        return Stream.concat(TestModels.hfFixtures().stream(), Stream.of(TestModels.demoModel()));
    }

    /** The golden output of a model: the single-process scorer's at commit 99952cb, token log-probs and top-5. */
    static Path golden(Path model) {
        return TestModels.repoRoot().resolve("gpu-runtime/src/test/resources/golden")
                .resolve(model.getFileName() + ".scores.jsonl");
    }

    /** Writes the model's input rows as JSON lines into {@code file}. */
    static Path write(Path model, Path file) throws IOException {
        ObjectMapper json = new ObjectMapper();
        List<String> lines = new ArrayList<>();
        JsonNode sequences = json.readTree(model.resolve("reference.json").toFile()).get("sequences");
        for (int s = sequences.size() - 1; s >= 0; s--) {
            lines.add("{\"id\": \"ref-" + s + "\", \"tokens\": " + sequences.get(s).get("tokens") + "}");
            if (s == sequences.size() - 2) {
                lines.add("{\"id\": \"empty\", \"tokens\": []}");
            }
        }
        if (model.equals(TestModels.demoModel())) {
            List<String> demo = Files.readAllLines(TestModels.repoRoot().resolve("demo/input.jsonl"));
            for (int i = 0; i < demo.size(); i++) {
                JsonNode row = json.readTree(demo.get(i));
                JsonNode tokens = row.get("tokens");
                int length = 1 + (97 * i) % 256;
                StringBuilder cut = new StringBuilder("[");
                for (int t = 0; t < length; t++) {
                    cut.append(t == 0 ? "" : ",").append(tokens.get(t).asInt());
                }
                lines.add("{\"id\": " + row.get("id") + ", \"tokens\": " + cut + "]}");
            }
        }
        Files.write(file, lines);
        return file;
    }
}
