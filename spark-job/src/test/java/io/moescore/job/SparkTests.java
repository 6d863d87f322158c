package io.moescore.job;

import io.moescore.score.LocalScoreOptions;
import io.moescore.score.LocalScorer;
import io.moescore.spark.ScoreJobOptions;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.apache.spark.sql.SparkSession;

/** Shared pieces of the Spark job tests. */
final class SparkTests {
    private SparkTests() {
    }

    static Path repoRoot() {
        Path p = Path.of("").toAbsolutePath();
        while (!Files.exists(p.resolve("demo/tiny-moe-code/config.json"))) {
            p = p.getParent();
        }
        return p;
    }

    static Path demoModel() {
        return repoRoot().resolve("demo/tiny-moe-code");
    }

    static Path demoInput() {
        return repoRoot().resolve("demo/input.jsonl");
    }

    static SparkSession localSession() {
        return localBuilder().getOrCreate();
    }

    static SparkSession.Builder localBuilder() {
        return SparkSession.builder().master("local[2]").appName("moescore-test")
                .config("spark.ui.enabled", "false")
                .config("spark.sql.shuffle.partitions", "2")
                .config("spark.moescore.cpuThreads", "2");
    }

    static ScoreJobOptions options(List<String> inputs, String inputFormat, String output, String outputFormat,
                                   String model, boolean tokenLogProbs, int topK, int partitions, int batchTokens) {
        return options(inputs, inputFormat, output, outputFormat, model, "cpu", "bf16", tokenLogProbs, topK, partitions,
                batchTokens);
    }

    static ScoreJobOptions options(List<String> inputs, String inputFormat, String output, String outputFormat,
                                   String model, String backend, String precision, boolean tokenLogProbs, int topK,
                                   int partitions, int batchTokens) {
        return options(inputs, inputFormat, output, outputFormat, model, backend, precision, false, tokenLogProbs, topK,
                partitions, batchTokens);
    }

    static ScoreJobOptions options(List<String> inputs, String inputFormat, String output, String outputFormat,
                                   String model, String backend, String precision, boolean deterministic,
                                   boolean tokenLogProbs, int topK, int partitions, int batchTokens) {
        return new ScoreJobOptions(inputs, inputFormat, output, outputFormat, model, backend, precision, deterministic,
                batchTokens,
                tokenLogProbs, topK, "error", "id", "tokens", "text", partitions, null);
    }

    /** The single-process scorer's output for the same input (the reference the job must equal). */
    static Path scoreLocally(Path input, Path dir, boolean tokenLogProbs, int topK) throws IOException {
        return scoreLocally(input, dir.resolve("local.jsonl"), "cpu", "bf16", tokenLogProbs, topK);
    }

    static Path scoreLocally(Path input, Path out, String backend, String precision, boolean tokenLogProbs, int topK)
            throws IOException {
        return scoreLocally(input, out, backend, precision, false, tokenLogProbs, topK);
    }

    static Path scoreLocally(Path input, Path out, String backend, String precision, boolean deterministic,
                             boolean tokenLogProbs, int topK) throws IOException {
        int code = new LocalScorer(new PrintStream(OutputStream.nullOutputStream())).run(
                new LocalScoreOptions(demoModel(), input, out, tokenLogProbs, topK, backend, precision, 8192, 2,
                        deterministic));
        if (code == LocalScorer.EXIT_BAD_INVOCATION) {
            throw new IllegalStateException("local scorer failed on " + input);
        }
        return out;
    }
}
