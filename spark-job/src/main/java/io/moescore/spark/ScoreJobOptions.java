package io.moescore.spark;

import io.moescore.backend.Precision;
import java.util.List;
import java.util.Locale;

/**
 * Options of {@link MoeScoreJob}, resolved from the command line first and {@code spark.moescore.*} conf second.
 *
 * @param precision bf16, fp16 or split-bf16 (GPU backends: see {@link Precision})
 * @param deterministic batch-invariant GPU scores
 * @param mode error (the default: refuse an existing output), overwrite, or append
 * @param resume commit input splits one by one into a hidden folder of the output, so that a rerun scores only
 *               the splits not committed yet (see {@link ResumeRun})
 * @param allowNonfinite load weights holding NaN or infinities (refused by default)
 */
public record ScoreJobOptions(List<String> inputs, String inputFormat, String output, String outputFormat,
                              String model, String backend, String precision, boolean deterministic, int batchTokens,
                              boolean tokenLogProbs, int topK,
                              String mode, String idColumn, String tokensColumn, String textColumn,
                              int partitions, String summaryPath, boolean resume, boolean allowNonfinite) {
    public static final List<String> FORMATS = List.of("arrow", "parquet", "json");
    public static final List<String> MODES = List.of("error", "overwrite", "append");

    public ScoreJobOptions(List<String> inputs, String inputFormat, String output, String outputFormat, String model,
                           String backend, String precision, boolean deterministic, int batchTokens,
                           boolean tokenLogProbs, int topK, String mode, String idColumn, String tokensColumn,
                           String textColumn, int partitions, String summaryPath) {
        this(inputs, inputFormat, output, outputFormat, model, backend, precision, deterministic, batchTokens,
                tokenLogProbs, topK, mode, idColumn, tokensColumn, textColumn, partitions, summaryPath, false);
    }

    public ScoreJobOptions(List<String> inputs, String inputFormat, String output, String outputFormat, String model,
                           String backend, String precision, boolean deterministic, int batchTokens,
                           boolean tokenLogProbs, int topK, String mode, String idColumn, String tokensColumn,
                           String textColumn, int partitions, String summaryPath, boolean resume) {
        this(inputs, inputFormat, output, outputFormat, model, backend, precision, deterministic, batchTokens,
                tokenLogProbs, topK, mode, idColumn, tokensColumn, textColumn, partitions, summaryPath, resume, false);
    }

    public ScoreJobOptions {
        if (inputs == null || inputs.isEmpty()) {
            throw new IllegalArgumentException("no input: pass --input PATH or set spark.moescore.input");
        }
        if (output == null || output.isBlank()) {
            throw new IllegalArgumentException("no output: pass --output PATH or set spark.moescore.output");
        }
        if (model == null || model.isBlank()) {
            throw new IllegalArgumentException("no model: pass --model DIR or set spark.moescore.model");
        }
        checkOneOf("--input-format", inputFormat, FORMATS);
        checkOneOf("--output-format", outputFormat, FORMATS);
        checkOneOf("--mode", mode, MODES);
        checkOneOf("--backend", backend, List.of("auto", "cpu", "cuda"));
        Precision.parse(precision);
        if (batchTokens < 1) {
            throw new IllegalArgumentException("--batch-tokens must be at least 1, got " + batchTokens);
        }
        if (topK < 0) {
            throw new IllegalArgumentException("--top-k must be 0 or more, got " + topK);
        }
        inputs = List.copyOf(inputs);
    }

    private static void checkOneOf(String option, String value, List<String> allowed) {
        if (!allowed.contains(value)) {
            throw new IllegalArgumentException(option + " '" + value + "' is not one of " + allowed);
        }
    }

    /** The format a path's name suggests: .arrow/.arrows/.feather, .parquet, .json/.jsonl; parquet otherwise. */
    public static String formatOf(String path) {
        String p = path.toLowerCase(Locale.ROOT).replaceAll("/+$", "");
        if (p.endsWith(".arrow") || p.endsWith(".arrows") || p.endsWith(".feather")) {
            return "arrow";
        }
        if (p.endsWith(".json") || p.endsWith(".jsonl")) {
            return "json";
        }
        return "parquet";
    }

    public ScoreJobOptions withResume(boolean resume) {
        return new ScoreJobOptions(inputs, inputFormat, output, outputFormat, model, backend, precision, deterministic,
                batchTokens, tokenLogProbs, topK, mode, idColumn, tokensColumn, textColumn, partitions, summaryPath,
                resume, allowNonfinite);
    }

    /** Where the job summary goes unless told: beside the output, as OUTPUT.summary.json. */
    public String resolvedSummaryPath() {
        return summaryPath != null ? summaryPath : output.replaceAll("/+$", "") + ".summary.json";
    }
}
