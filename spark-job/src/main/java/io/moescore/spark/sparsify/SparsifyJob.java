package io.moescore.spark.sparsify;

import io.moescore.model.Checkpoint;
import io.moescore.model.ModelConfig;
import io.moescore.model.ModelFormatException;
import io.moescore.score.ScoreSettings;
import io.moescore.score.Setting;
import io.moescore.spark.CommandSettings;
import io.moescore.spark.DatasetScorer;
import io.moescore.spark.JobConf;
import io.moescore.spark.JobExit;
import io.moescore.spark.ModelFiles;
import io.moescore.spark.MoeScoreJob;
import io.moescore.spark.ScoreJobOptions;
import io.moescore.spark.ScoringSpec;
import io.moescore.spark.TokenRows;
import io.moescore.sparsify.ExpertTensor;
import io.moescore.sparsify.Sparsifier;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkContext;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.storage.StorageLevel;
import org.apache.spark.util.LongAccumulator;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * The calibrated sparsification job (spark-submit main class): every method and pattern of the single-process
 * {@code moescore sparsify}, with the statistics gathered across executors. Reads calibration rows like the scoring
 * job reads its input; per pass (all MoE layers whose statistics fit an executor at once, or one layer when
 * sequential) executors run the forward pass on their shared engine and collect each expert projection's X^T X
 * (wanda: its diagonal) exactly ({@link CalibrationPass}), the shuffle sends them to their expert's task
 * ({@link CalibrationShuffle}), which prunes that expert's weights ({@link ExpertSolve}); with
 * {@code --reconstruct-steps} a second stage tunes each expert on the executor holding its calibration inputs
 * ({@link ExpertReconstruct}). The driver collects only the packed weights and writes the compressed checkpoint the
 * single-process tool writes, bit for bit ({@link SparsifyPass}). {@code --sequential}: each pass runs through a
 * copy of the model whose earlier layers hold their pruned (and reconstructed) weights ({@link PartlyPrunedCopies}).
 * magnitude needs no calibration and runs on the driver.
 *
 * <p>Exit codes: 0 done, 2 bad options or unusable model, input or memory, 1 anything else.
 */
@Command(name = "sparsify-job", mixinStandardHelpOptions = true, modelTransformer = CommandSettings.Options.class,
        description = "Prunes every expert's weights 2:4 or 128:2:8 (sparsegpt, optionally with expert "
                + "reconstruction, wanda or magnitude) on a Spark cluster, calibrated on any input the scoring job "
                + "reads, and writes a compressed checkpoint. Options fall back to spark.moescore.<name> conf (e.g. "
                + "spark.moescore.model).")
public final class SparsifyJob implements Callable<Integer>, CommandSettings.Command {
    private static final String CONF = MoeScoreJob.CONF_PREFIX;

    @Option(names = "--calibration", description = "calibration data: a file or folder of token or text rows in any "
            + "format the scoring job reads; repeat for several (conf: calibration, comma-separated)")
    List<String> calibration;
    @Option(names = "--calibration-format",
            description = "arrow, parquet or json (default: from the first path's name)")
    String calibrationFormat;
    @Option(names = "--model", description = "dense model directory, local or any Hadoop FS URI (conf: model)")
    String model;
    @Option(names = "--out", description = "output directory of the compressed checkpoint, on the driver (conf: out)")
    String out;
    @Option(names = "--pattern", description = "sparsity pattern: 2:4 (default) or 128:2:8 (conf: pattern)")
    String pattern;
    @Option(names = "--method", description = "sparsegpt (default), wanda or magnitude (conf: method)")
    String method;
    @Option(names = "--sequential", description = "calibrate each MoE layer on activations through the already "
            + "pruned layers before it: one pass per layer (conf: sequential)")
    Boolean sequential;
    @Option(names = "--work-dir", description = "--sequential: where the partly pruned model copies go, readable by "
            + "every executor (conf: workDir; default OUT.work beside the output; on several hosts a shared FS URI)")
    String workDir;
    @Option(names = "--summary", description = "where to write the JSON summary (default: OUT.summary.json)")
    String summary;

    @Spec
    CommandSpec spec;

    /**
     * The scoring settings the executors' forward pass takes (flags from {@link CommandSettings}), --partitions,
     * --reconstruct-steps.
     */
    static final List<Setting<?>> SETTINGS = List.of(ScoreSettings.BACKEND, ScoreSettings.PRECISION,
            ScoreSettings.BATCH_TOKENS, ScoreSettings.CPU_THREADS, ScoreJobOptions.PARTITIONS,
            SparsifyOptions.RECONSTRUCT_STEPS);

    @Override
    public List<Setting<?>> settings() {
        return SETTINGS;
    }

    /** The options, resolved against a Spark conf. */
    public SparsifyOptions resolve(SparkConf conf) {
        List<String> in = calibration != null ? calibration : JobConf.list(conf.get(CONF + "calibration", ""));
        Setting.Source given = CommandSettings.source(spec, conf);
        return new SparsifyOptions(in, JobConf.pick(calibrationFormat, conf, "calibrationFormat",
                in.isEmpty() ? "json" : ScoreJobOptions.formatOf(in.get(0))),
                JobConf.pick(model, conf, "model", null), JobConf.pick(out, conf, "out", null),
                JobConf.pick(pattern, conf, "pattern", "2:4"),
                JobConf.pick(method, conf, "method", "sparsegpt"),
                sequential != null ? sequential : conf.getBoolean(CONF + "sequential", false),
                ScoreSettings.resolve(given), ScoreJobOptions.PARTITIONS.resolve(given),
                conf.get(CONF + "tokensColumn", "tokens"), conf.get(CONF + "textColumn", "text"),
                JobConf.pick(workDir, conf, "workDir", null), summary,
                SparsifyOptions.reconstruction(SparsifyOptions.RECONSTRUCT_STEPS.resolve(given)));
    }

    public static void main(String[] args) {
        JobExit.exit(new CommandLine(new SparsifyJob()).execute(args));
    }

    @Override
    public Integer call() {
        SparkSession spark = SparkSession.builder().appName("moescore sparsify").getOrCreate();
        try {
            SparsifyOptions options = resolve(spark.sparkContext().getConf());
            run(spark, options).print(System.err);
            return MoeScoreJob.EXIT_OK;
        } catch (IllegalArgumentException e) {
            System.err.println("moescore sparsify-job: " + e.getMessage());
            return MoeScoreJob.EXIT_BAD_INVOCATION;
        } catch (Exception e) {  // Spark's SparkException is checked in Java's eyes but undeclared
            if (!(e instanceof org.apache.spark.SparkException) && !(e instanceof IOException)) {
                throw e instanceof RuntimeException r ? r : new IllegalStateException(e);
            }
            System.err.println("moescore sparsify-job: the job failed and wrote no checkpoint: " + e.getMessage());
            return MoeScoreJob.EXIT_FAILED;
        } finally {
            spark.stop();
        }
    }

    /**
     * Runs the job on a session: writes the checkpoint and the summary, and returns the summary. Bad options, a
     * missing model or calibration data, or executors too small for the Hessians throw IllegalArgumentException
     * before any task runs.
     */
    public static SparsifySummary run(SparkSession spark, SparsifyOptions o) throws IOException {
        long start = System.nanoTime();
        SparkContext sc = spark.sparkContext();
        String modelUri = ModelFiles.forExecutors(o.model());
        ScoringSpec spec = spec(sc, o, modelUri);
        ModelConfig config = DatasetScorer.checkModel(spec);
        Pruning pruning = o.pruning();
        List<int[]> passes = pruning.calibrates() ? HessianMemory.passes(config, o.scoring().backend(),
                HessianMemory.Budget.of(sc), pruning, o.sequential()) : List.of();
        Path localModel = ModelFiles.localize(modelUri, sc.hadoopConfiguration());
        checkPrunable(localModel, config, o.model(), pruning);
        double progressSeconds = Double.parseDouble(spark.conf().get(CONF + "progressSeconds", "30"));
        LongAccumulator skipped = sc.longAccumulator("moescore calibration rows skipped");
        JavaPairRDD<Long, int[]> calibration = null;
        try {
            if (!o.calibration().isEmpty()) {
                calibration = TokenRows.readNumbered(spark, o.calibration(), o.calibrationFormat(), spec,
                        o.partitions(), skipped).persist(StorageLevel.MEMORY_AND_DISK());
            }
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("calibration data: " + e.getMessage(), e);
        }
        try (PartlyPrunedCopies copies = o.sequential()
                ? new PartlyPrunedCopies(o.resolvedWorkDir(), sc.hadoopConfiguration()) : null) {
            long[] rowsAndTokens = calibration == null ? new long[2] : count(sc, calibration, progressSeconds);
            if (pruning.calibrates() && rowsAndTokens[0] == 0) {
                throw new IllegalArgumentException("calibration data " + o.calibration() + " holds no usable rows ("
                        + skipped.value() + " rows without tokens): " + o.method() + " needs calibration tokens");
            }
            System.err.printf(Locale.ROOT, "moescore sparsify: %d calibration rows (%d skipped), %,d tokens; passes "
                    + "over layers %s%n", rowsAndTokens[0], skipped.value(), rowsAndTokens[1],
                    SparsifySummary.layersOf(passes));
            Map<String, PrunedWeight> pruned = new HashMap<>();
            List<SparsifySummary.Pass> done = new ArrayList<>();
            String passModel = modelUri;   // what the next pass runs through
            String retired = null;         // the copy the pass before ran through: its tasks have all ended
            for (int i = 0; i < passes.size(); i++) {
                int[] layers = passes.get(i);
                done.add(SparsifyPass.run(sc, calibration, spec.withModel(passModel), config, layers, pruning,
                        retired, modelUri, progressSeconds, pruned));
                if (retired != null) {
                    copies.delete(retired);
                }
                if (o.sequential() && i + 1 < passes.size()) {
                    retired = passModel.equals(modelUri) ? null : passModel;
                    passModel = copies.write(localModel, dense(pruned), layers[layers.length - 1]);
                }
            }
            Sparsifier.Result result = Sparsifier.write(localModel, Path.of(o.out()),
                    new Sparsifier.Provenance(pruning.pattern(), o.method(), o.sequential(), o.reconstruction(),
                            rowsAndTokens[1]), (tensor, weights) -> {
                        PrunedWeight w = pruned.get(tensor.name());
                        return w == null ? null : w.dense();
                    });
            SparsifySummary summary = new SparsifySummary(pruning, o.sequential(), o.out(), rowsAndTokens[0],
                    skipped.value(), rowsAndTokens[1], done, null, (System.nanoTime() - start) / 1e9);
            summary = summary.withResult(result.withReconstructed(summary.reconstructionErrors()));
            try {
                summary.write(o.resolvedSummaryPath(), sc.hadoopConfiguration());
            } catch (IOException e) {
                System.err.println("moescore sparsify: could not write the summary to " + o.resolvedSummaryPath()
                        + ": " + e);
            }
            return summary;
        } finally {
            if (calibration != null) {
                calibration.unpersist(false);
            }
        }
    }

    /** The calibration rows and tokens (the first job: reads and caches the rows). */
    private static long[] count(SparkContext sc, JavaPairRDD<Long, int[]> calibration, double progressSeconds) {
        try (StageProgress p = StageProgress.start(sc, "reading calibration data", List.of("read"),
                progressSeconds, () -> "", System.err::println)) {
            return calibration.values().aggregate(new long[2], (a, t) -> {
                a[0]++;
                a[1] += t.length;
                return a;
            }, (a, b) -> new long[] {a[0] + b[0], a[1] + b[1]});
        }
    }

    /** Fails before any work where the model's experts cannot be pruned to the pattern by this job. */
    private static void checkPrunable(Path localModel, ModelConfig config, String model, Pruning pruning) {
        for (int cols : new int[] {config.hiddenSize(), config.expertFfnSize()}) {
            if (cols % 32 != 0) {
                throw new IllegalArgumentException("model " + model + ": " + pruning.pattern().userName()
                        + " packing needs expert widths that are multiples of 32 (hidden " + config.hiddenSize()
                        + ", expert ffn " + config.expertFfnSize() + ")");
            }
        }
        try (Checkpoint ckpt = Checkpoint.open(localModel)) {
            for (String name : ckpt.tensorNames()) {
                if (ExpertTensor.parse(name).isPresent()) {
                    return;
                }
            }
        } catch (ModelFormatException e) {
            throw new IllegalArgumentException(e.getMessage(), e);
        }
        throw new IllegalArgumentException("model " + model + " has no per-expert weights to prune (fused experts "
                + "are not supported by the sparsify tools yet)");
    }

    /** The pruned weights so far, dense (for the next sequential pass's model copy). */
    private static Map<String, float[]> dense(Map<String, PrunedWeight> pruned) {
        Map<String, float[]> out = new HashMap<>();
        pruned.forEach((name, w) -> out.put(name, w.dense()));
        return out;
    }

    static ScoringSpec spec(SparkContext sc, SparsifyOptions o, String modelUri) {
        return new ScoringSpec(modelUri, o.scoring(), o.tokensColumn(), o.textColumn(), ModelFiles.hadoopEntries(sc));
    }
}
