package io.moescore.spark.sparsify;

import io.moescore.score.ScoreSettings;
import io.moescore.spark.ScoreJobOptions;
import java.util.List;

/**
 * Options of {@link SparsifyJob}, resolved from the command line first and {@code spark.moescore.*} conf second.
 *
 * @param calibration       calibration data: files or folders any scoring job input can be (tokens or text rows)
 * @param out               the compressed checkpoint's directory, on the driver's file system
 * @param workDir           where {@code --sequential} puts a partly pruned model copy per layer for the executors
 *                          (null: beside {@code out}; a cluster of several hosts needs a shared file system)
 * @param scoring           how the executors run the forward pass (backend, precision, batch tokens, CPU threads)
 * @param partitions        repartition the calibration rows into N partitions first (0: as read)
 */
public record SparsifyOptions(List<String> calibration, String calibrationFormat, String model, String out,
                              String pattern, String method, boolean sequential, ScoreSettings scoring,
                              int partitions, String tokensColumn, String textColumn, String workDir,
                              String summaryPath) {
    public static final List<String> METHODS = List.of("sparsegpt");

    public SparsifyOptions {
        if (calibration == null || calibration.isEmpty()) {
            throw new IllegalArgumentException("no calibration data: pass --calibration PATH (any input the scoring "
                    + "job reads) or set spark.moescore.calibration");
        }
        if (model == null || model.isBlank()) {
            throw new IllegalArgumentException("no model: pass --model DIR or set spark.moescore.model");
        }
        if (out == null || out.isBlank()) {
            throw new IllegalArgumentException("no output: pass --out DIR or set spark.moescore.out");
        }
        if (!"2:4".equals(pattern)) {
            throw new IllegalArgumentException("--pattern '" + pattern + "' is not supported by this job, whose "
                    + "sparsegpt prunes 2:4 only (128:2:8: moescore sparsify, in one process)");
        }
        if (!METHODS.contains(method)) {
            throw new IllegalArgumentException("--method '" + method + "' is not one of " + METHODS
                    + " (magnitude and wanda: moescore sparsify, in one process)");
        }
        if (!ScoreJobOptions.FORMATS.contains(calibrationFormat)) {
            throw new IllegalArgumentException("--calibration-format '" + calibrationFormat + "' is not one of "
                    + ScoreJobOptions.FORMATS);
        }
        if (scoring == null) {
            throw new IllegalArgumentException("no scoring settings");
        }
        ScoreJobOptions.PARTITIONS.valueOf(partitions, ScoreJobOptions.PARTITIONS.flag());
        calibration = List.copyOf(calibration);
    }

    /** Where the job summary goes unless told: beside the output, as OUT.summary.json. */
    public String resolvedSummaryPath() {
        return summaryPath != null ? summaryPath : out.replaceAll("/+$", "") + ".summary.json";
    }

    /** Where --sequential writes its model copies unless told: beside the output, as OUT.work. */
    public String resolvedWorkDir() {
        return workDir != null ? workDir : out.replaceAll("/+$", "") + ".work";
    }
}
