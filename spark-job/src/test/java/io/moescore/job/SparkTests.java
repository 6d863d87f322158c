package io.moescore.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
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

    /**
     * Checks that each task of an output ({@code part-PPPPP-...-cNNN.EXT} files) rolled over to a new file after
     * {@code maxRecordsPerFile} rows: its files are c000, c001, ... each of that many rows but the last (1 to that
     * many; a task's only file may be empty), so a task of R rows has ceil(R / N) files; 0 or less: one file a task.
     * Returns the rows per task.
     */
    static Map<String, Long> assertRolledOver(SparkSession spark, Path out, String format, long maxRecordsPerFile)
            throws IOException {
        Map<String, List<Path>> byTask = new TreeMap<>();
        try (Stream<Path> files = Files.list(out)) {
            files.filter(p -> p.getFileName().toString().startsWith("part-")).sorted()
                    .forEach(p -> byTask.computeIfAbsent(p.getFileName().toString().substring(0, 10),
                            t -> new ArrayList<>()).add(p));
        }
        assertFalse(byTask.isEmpty(), "no part files in " + out);
        long limit = maxRecordsPerFile > 0 ? maxRecordsPerFile : Long.MAX_VALUE;
        Map<String, Long> rowsPerTask = new TreeMap<>();
        byTask.forEach((task, files) -> {
            long total = 0;
            for (int f = 0; f < files.size(); f++) {
                String name = files.get(f).getFileName().toString();
                assertTrue(name.contains(String.format(Locale.ROOT, "-c%03d.", f)), out + ": file " + f + " of task "
                        + task + " is " + name);
                long rows = spark.read().format(format).load(files.get(f).toString()).count();
                boolean last = f == files.size() - 1;
                assertTrue(last ? rows <= limit && (rows > 0 || files.size() == 1) : rows == limit, out + ": " + name + " holds " + rows + " rows");
                total += rows;
            }
            assertEquals(Math.max(1, (total + limit - 1) / limit), files.size(),
                    out + ": files of task " + task + " with " + total + " rows");
            rowsPerTask.put(task, total);
        });
        return rowsPerTask;
    }
}
