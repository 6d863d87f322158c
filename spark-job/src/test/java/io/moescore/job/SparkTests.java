package io.moescore.job;

import io.moescore.backend.Precision;
import io.moescore.score.LocalScoreOptions;
import io.moescore.score.LocalScorer;
import io.moescore.score.ScoreSettings;
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
        return new ScoreJobOptions(inputs, inputFormat, output, outputFormat, model,
                settings(backend, precision, deterministic, tokenLogProbs, topK, batchTokens), "error", "id", "tokens",
                "text", partitions, null);
    }

    /** The tests' settings: the CPU backend on 2 threads (as {@link #localSession}'s conf), other settings default. */
    static ScoreSettings cpu() {
        return ScoreSettings.DEFAULTS.with(ScoreSettings.BACKEND, "cpu").with(ScoreSettings.CPU_THREADS, 2);
    }

    static ScoreSettings settings(String backend, String precision, boolean deterministic, boolean tokenLogProbs,
                                  int topK, int batchTokens) {
        return cpu().with(ScoreSettings.BACKEND, backend).with(ScoreSettings.PRECISION, Precision.parse(precision))
                .with(ScoreSettings.DETERMINISTIC, deterministic).with(ScoreSettings.TOKEN_LOGPROBS, tokenLogProbs)
                .with(ScoreSettings.TOP_K, topK).with(ScoreSettings.BATCH_TOKENS, batchTokens);
    }

    /**
     * {@code options} with some record components replaced, by name ({@code "mode", "overwrite", "summaryPath",
     * null}), the rest as they are: through the record's canonical constructor, so its checks run.
     */
    static ScoreJobOptions with(ScoreJobOptions options, Object... namesAndValues) {
        java.util.Map<String, Object> changes = new java.util.HashMap<>();
        for (int i = 0; i < namesAndValues.length; i += 2) {
            changes.put((String) namesAndValues[i], namesAndValues[i + 1]);
        }
        java.lang.reflect.RecordComponent[] parts = ScoreJobOptions.class.getRecordComponents();
        Object[] args = new Object[parts.length];
        Class<?>[] types = new Class<?>[parts.length];
        try {
            for (int i = 0; i < parts.length; i++) {
                String name = parts[i].getName();
                args[i] = changes.containsKey(name) ? changes.remove(name) : parts[i].getAccessor().invoke(options);
                types[i] = parts[i].getType();
            }
            if (!changes.isEmpty()) {
                throw new IllegalArgumentException("ScoreJobOptions has no " + changes.keySet());
            }
            return ScoreJobOptions.class.getDeclaredConstructor(types).newInstance(args);
        } catch (java.lang.reflect.InvocationTargetException e) {
            throw e.getCause() instanceof RuntimeException r ? r : new IllegalStateException(e.getCause());
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException(e);
        }
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
                new LocalScoreOptions(demoModel(), input, out, true,  // a test may compute its reference twice
                        settings(backend, precision, deterministic, tokenLogProbs, topK,
                                ScoreSettings.DEFAULTS.batchTokens())));
        if (code == LocalScorer.EXIT_BAD_INVOCATION) {
            throw new IllegalStateException("local scorer failed on " + input);
        }
        return out;
    }
}
