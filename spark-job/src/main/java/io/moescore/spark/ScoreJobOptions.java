package io.moescore.spark;

import io.moescore.score.ScoreSettings;
import io.moescore.score.Setting;
import java.util.List;
import java.util.Locale;

/**
 * Options of {@link MoeScoreJob}, resolved from the command line first and {@code spark.moescore.*} conf second.
 *
 * @param scoring    how rows are scored (backend, precision, batch tokens, ...: {@link ScoreSettings})
 * @param mode       error (the default: refuse an existing output), overwrite, or append
 * @param partitions repartition the input into this many partitions first (0: as read)
 * @param resume     commit input splits one by one into a hidden folder of the output, so that a rerun scores only
 *                   the splits not committed yet (see {@link ResumeRun})
 * @param routingTrace a folder to write the routing trace into (per batch and MoE layer, the tokens each expert
 *                   received: {@link RoutingTraceOutput}), or null for none
 * @param outputWriter how the output is written: from the score vectors ({@link VectorOutput}) or by Spark's row
 *                   writer
 * @param routingTraceTokens the routing trace also holds each token's chosen experts and gates
 *                   ({@code --routing-trace-tokens}; needs {@code routingTrace})
 */
public record ScoreJobOptions(List<String> inputs, String inputFormat, String output, String outputFormat,
                              String model, ScoreSettings scoring, String mode, String idColumn, String tokensColumn,
                              String textColumn, int partitions, String summaryPath, boolean resume,
                              String routingTrace, OutputWriter outputWriter, boolean routingTraceTokens) {
    public static final List<String> FORMATS = List.of("arrow", "parquet", "json");
    public static final List<String> MODES = List.of("error", "overwrite", "append");
    /** Shared with the sparsify job, which repartitions its calibration rows the same way. */
    public static final Setting<Integer> PARTITIONS = Setting.integer("partitions", "--partitions", 0, 0,
            Integer.MAX_VALUE, "repartition the input rows into N partitions first (0: as read)");

    /** How the job writes its output ({@code --output-writer}). */
    public enum OutputWriter {
        /** Each task writes its file straight from the score vectors (Arrow IPC, Parquet, JSON lines). */
        VECTORS,
        /** Spark's DataFrameWriter over the scored rows (the writer before the direct ones; a fallback). */
        ROWS
    }

    public static final Setting<OutputWriter> OUTPUT_WRITER = Setting.choice("outputWriter", "--output-writer",
            OutputWriter.class, OutputWriter.VECTORS, List.of(OutputWriter.values()),
            w -> w.name().toLowerCase(Locale.ROOT), "vectors: each task writes its output file straight from the "
                    + "score vectors (default); rows: through Spark's row writer (same files, slower)");

    public ScoreJobOptions(List<String> inputs, String inputFormat, String output, String outputFormat, String model,
                           ScoreSettings scoring, String mode, String idColumn, String tokensColumn,
                           String textColumn, int partitions, String summaryPath) {
        this(inputs, inputFormat, output, outputFormat, model, scoring, mode, idColumn, tokensColumn, textColumn,
                partitions, summaryPath, false, null, OutputWriter.VECTORS);
    }

    public ScoreJobOptions(List<String> inputs, String inputFormat, String output, String outputFormat, String model,
                           ScoreSettings scoring, String mode, String idColumn, String tokensColumn,
                           String textColumn, int partitions, String summaryPath, boolean resume,
                           String routingTrace, OutputWriter outputWriter) {
        this(inputs, inputFormat, output, outputFormat, model, scoring, mode, idColumn, tokensColumn, textColumn,
                partitions, summaryPath, resume, routingTrace, outputWriter, false);
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
        if (scoring == null) {
            throw new IllegalArgumentException("no scoring settings");
        }
        checkOneOf("--input-format", inputFormat, FORMATS);
        checkOneOf("--output-format", outputFormat, FORMATS);
        checkOneOf("--mode", mode, MODES);
        PARTITIONS.valueOf(partitions, PARTITIONS.flag());
        if (outputWriter == null) {
            throw new IllegalArgumentException("no output writer");
        }
        if (routingTrace != null && routingTrace.isBlank()) {
            throw new IllegalArgumentException("--routing-trace must not be empty");
        }
        if (routingTraceTokens && routingTrace == null) {
            throw new IllegalArgumentException("--routing-trace-tokens needs --routing-trace DIR (the token routing "
                    + "is written into DIR/tokens/)");
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
        return new ScoreJobOptions(inputs, inputFormat, output, outputFormat, model, scoring, mode, idColumn,
                tokensColumn, textColumn, partitions, summaryPath, resume, routingTrace, outputWriter,
                routingTraceTokens);
    }

    /** These options writing the routing trace into {@code dir} (null: none). */
    public ScoreJobOptions withRoutingTrace(String dir) {
        return new ScoreJobOptions(inputs, inputFormat, output, outputFormat, model, scoring, mode, idColumn,
                tokensColumn, textColumn, partitions, summaryPath, resume, dir, outputWriter, routingTraceTokens);
    }

    /** These options with each token's routing in the routing trace ({@code on}) or not. */
    public ScoreJobOptions withRoutingTraceTokens(boolean on) {
        return new ScoreJobOptions(inputs, inputFormat, output, outputFormat, model, scoring, mode, idColumn,
                tokensColumn, textColumn, partitions, summaryPath, resume, routingTrace, outputWriter, on);
    }

    /** These options writing the output with {@code writer}. */
    public ScoreJobOptions withOutputWriter(OutputWriter writer) {
        return new ScoreJobOptions(inputs, inputFormat, output, outputFormat, model, scoring, mode, idColumn,
                tokensColumn, textColumn, partitions, summaryPath, resume, routingTrace, writer,
                routingTraceTokens);
    }

    /** Where the job summary goes unless told: beside the output, as OUTPUT.summary.json. */
    public String resolvedSummaryPath() {
        return summaryPath != null ? summaryPath : output.replaceAll("/+$", "") + ".summary.json";
    }
}
