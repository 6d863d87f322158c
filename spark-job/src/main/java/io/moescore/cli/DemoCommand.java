package io.moescore.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moescore.score.LocalScoreOptions;
import io.moescore.score.LocalScorer;
import java.io.BufferedReader;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code moescore demo}: scores demo/input.jsonl (held-out Python code, prose and random tokens) with the
 * trained demo model and prints the perplexity of each kind: code is what the model learned, so it scores lowest.
 */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = "Scores the bundled demo input with the bundled demo model and prints perplexity by kind.")
final class DemoCommand implements Callable<Integer> {
    @Option(names = "--output", description = "where the scores go (default: out/demo/scores.jsonl)")
    Path output;

    @Option(names = "--backend", defaultValue = "auto", description = "auto, cpu or cuda (default: ${DEFAULT-VALUE})")
    String backend;

    @Override
    public Integer call() throws IOException {
        Path home = Moescore.home();
        Path out = output != null ? output : home.resolve("out/demo/scores.jsonl");
        LocalScoreOptions options = new LocalScoreOptions(home.resolve("demo/tiny-moe-code"),
                home.resolve("demo/input.jsonl"), out, false, 5, backend, 8192,
                Runtime.getRuntime().availableProcessors());
        int code = new LocalScorer(System.err).run(options);
        if (code == LocalScorer.EXIT_BAD_INVOCATION) {
            return code;
        }
        printPerplexityByKind(out);
        System.out.println("scores: " + out + "  summary: " + LocalScorer.summaryPath(out));
        return code;
    }

    /** Mean NLL per kind (the id up to its first '-'), shown as perplexity. */
    private static void printPerplexityByKind(Path scores) throws IOException {
        ObjectMapper json = new ObjectMapper();
        Map<String, double[]> byKind = new TreeMap<>();
        try (BufferedReader in = Files.newBufferedReader(scores)) {
            String line;
            while ((line = in.readLine()) != null) {
                JsonNode row = json.readTree(line);
                if (row.get("mean_nll").isNull()) {
                    continue;
                }
                String id = row.get("id").asText();
                String kind = id.contains("-") ? id.substring(0, id.indexOf('-')) : id;
                double[] acc = byKind.computeIfAbsent(kind, k -> new double[2]);
                acc[0] += row.get("sum_logprob").asDouble();
                acc[1] += row.get("num_tokens").asInt() - 1;
            }
        }
        System.out.printf("%-8s %10s %12s%n", "kind", "tokens", "perplexity");
        byKind.forEach((kind, acc) -> System.out.printf("%-8s %10d %12.2f%n", kind, (long) acc[1],
                Math.exp(-acc[0] / acc[1])));
    }
}
