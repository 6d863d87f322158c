package io.moescore.spark.sparsify;

import io.moescore.score.ScoreSettings;
import io.moescore.score.Setting;
import io.moescore.sparse.SparsityPattern;
import io.moescore.sparsify.ExpertReconstruction;
import io.moescore.sparsify.Sparsifier;
import io.moescore.spark.ScoreJobOptions;
import java.util.List;

/**
 * Options of {@link SparsifyJob}, resolved from the command line first and {@code spark.moescore.*} conf second.
 *
 * @param calibration       calibration data: files or folders any scoring job input can be (tokens or text rows);
 *                          may be empty for magnitude only
 * @param out               the compressed checkpoint's directory, on the driver's file system
 * @param pattern           2:4 or 128:2:8 ({@link SparsityPattern})
 * @param method            magnitude, wanda or sparsegpt ({@link Sparsifier#METHODS})
 * @param workDir           where {@code --sequential} puts a partly pruned model copy per layer for the executors
 *                          (null: beside {@code out}; a cluster of several hosts needs a shared file system)
 * @param scoring           how the executors run the forward pass (backend, precision, batch tokens, CPU threads)
 * @param partitions        repartition the calibration rows into N partitions first (0: as read)
 * @param reconstruction    sparsegpt: after each pass's solves, tune every reached expert's kept weights on the
 *                          executors ({@link ExpertReconstruction}; steps 0: not)
 */
public record SparsifyOptions(List<String> calibration, String calibrationFormat, String model, String out,
                              String pattern, String method, boolean sequential, ScoreSettings scoring,
                              int partitions, String tokensColumn, String textColumn, String workDir,
                              String summaryPath, ExpertReconstruction.Options reconstruction) {
    /**
     * {@code --reconstruct-steps}, shared with the single-process {@code moescore sparsify}: Adam steps of the
     * expert reconstruction (minibatches of 512 calibration tokens, lr 1e-3, seed 7: {@link
     * ExpertReconstruction.Options#of}).
     */
    public static final Setting<Integer> RECONSTRUCT_STEPS = Setting.integer("reconstructSteps",
            "--reconstruct-steps", 0, 0, Integer.MAX_VALUE, "sparsegpt: then tune each expert's kept weights so it "
                    + "reproduces the dense expert on its calibration tokens (Adam, steps of 512 tokens, masks "
                    + "fixed; 200 took the demo model from x1.21 to x1.13 of dense perplexity; 0: none)");

    public SparsifyOptions(List<String> calibration, String calibrationFormat, String model, String out,
                           String pattern, String method, boolean sequential, ScoreSettings scoring, int partitions,
                           String tokensColumn, String textColumn, String workDir, String summaryPath) {
        this(calibration, calibrationFormat, model, out, pattern, method, sequential, scoring, partitions,
                tokensColumn, textColumn, workDir, summaryPath, ExpertReconstruction.Options.NONE);
    }

    public SparsifyOptions {
        if (model == null || model.isBlank()) {
            throw new IllegalArgumentException("no model: pass --model DIR or set spark.moescore.model");
        }
        if (out == null || out.isBlank()) {
            throw new IllegalArgumentException("no output: pass --out DIR or set spark.moescore.out");
        }
        SparsityPattern.parse(pattern);
        if (reconstruction == null) {
            throw new IllegalArgumentException("no reconstruction settings");
        }
        Sparsifier.checkMethod(method, sequential, reconstruction);
        if (calibration == null || (calibration.isEmpty() && !method.equals("magnitude"))) {
            throw new IllegalArgumentException("no calibration data: pass --calibration PATH (any input the scoring "
                    + "job reads) or set spark.moescore.calibration; --method " + method + " calibrates");
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

    /** The reconstruction {@code --reconstruct-steps N} asks for (the measured settings; 0: none). */
    public static ExpertReconstruction.Options reconstruction(int steps) {
        return steps == 0 ? ExpertReconstruction.Options.NONE : ExpertReconstruction.Options.of(steps);
    }

    /** How the executors prune. */
    public Pruning pruning() {
        return new Pruning(SparsityPattern.parse(pattern), method, reconstruction);
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
