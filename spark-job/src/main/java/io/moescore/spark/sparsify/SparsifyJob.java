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
import io.moescore.sparse.Sparse24;
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
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.storage.StorageLevel;
import org.apache.spark.util.CollectionAccumulator;
import org.apache.spark.util.LongAccumulator;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * The calibrated 2:4 sparsification job (spark-submit main class): SparseGPT per expert, from Hessians gathered
 * across executors. Reads calibration rows like the scoring job reads its input; per pass (all MoE layers whose
 * Hessians fit an executor at once, or one layer when sequential) executors run the forward pass on their shared
 * engine and collect each expert projection's X^T X ({@link CalibrationPass}), the shuffle sums them keyed by expert
 * ({@link ExpertHessianSums}), and one task per Hessian prunes that expert's weights ({@link ExpertSolve}); the
 * driver collects only the packed weights and writes the compressed checkpoint the single-process
 * {@code moescore sparsify} writes. {@code --sequential}: each pass runs through a copy of the model whose earlier
 * layers hold their pruned weights ({@link PartlyPrunedCopies}).
 *
 * <p>Exit codes: 0 done, 2 bad options or unusable model, input or memory, 1 anything else.
 */
@Command(name = "sparsify-job", mixinStandardHelpOptions = true, modelTransformer = CommandSettings.Options.class,
        description = "Prunes every expert's weights 2:4 by SparseGPT on a Spark cluster, calibrated on any input the "
                + "scoring job reads, and writes a compressed checkpoint. Options fall back to spark.moescore.<name> "
                + "conf (e.g. spark.moescore.model).")
public final class SparsifyJob implements Callable<Integer>, CommandSettings.Command {
    private static final String CONF = MoeScoreJob.CONF_PREFIX;
    /** Above this many bytes of packed weights per pass, the driver fetches them a partition at a time. */
    private static final long COLLECT_AT_ONCE_BYTES = 256L << 20;

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
    @Option(names = "--pattern", description = "sparsity pattern (only 2:4)")
    String pattern;
    @Option(names = "--method", description = "sparsegpt (the only one here; conf: method)")
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

    /** The scoring settings the executors' forward pass takes (flags from {@link CommandSettings}), --partitions. */
    static final List<Setting<?>> SETTINGS = List.of(ScoreSettings.BACKEND, ScoreSettings.PRECISION,
            ScoreSettings.BATCH_TOKENS, ScoreSettings.CPU_THREADS, ScoreJobOptions.PARTITIONS);

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
                JobConf.pick(workDir, conf, "workDir", null), summary);
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
        List<int[]> passes = HessianMemory.passes(config, o.scoring().backend(), HessianMemory.Budget.of(sc),
                o.sequential());
        Path localModel = ModelFiles.localize(modelUri, sc.hadoopConfiguration());
        checkPrunable(localModel, config, o.model());
        double progressSeconds = Double.parseDouble(spark.conf().get(CONF + "progressSeconds", "30"));
        LongAccumulator skipped = sc.longAccumulator("moescore calibration rows skipped");
        JavaRDD<int[]> calibration;
        try {
            calibration = TokenRows.read(spark, o.calibration(), o.calibrationFormat(), spec, o.partitions(), skipped)
                    .persist(StorageLevel.MEMORY_AND_DISK());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("calibration data: " + e.getMessage(), e);
        }
        try (PartlyPrunedCopies copies = o.sequential()
                ? new PartlyPrunedCopies(o.resolvedWorkDir(), sc.hadoopConfiguration()) : null) {
            long[] rowsAndTokens;
            try (StageProgress p = StageProgress.start(sc, "reading calibration data", List.of("read"),
                    progressSeconds, () -> "", System.err::println)) {
                rowsAndTokens = calibration.aggregate(new long[2], (a, t) -> {
                    a[0]++;
                    a[1] += t.length;
                    return a;
                }, (a, b) -> new long[] {a[0] + b[0], a[1] + b[1]});
            }
            if (rowsAndTokens[0] == 0) {
                throw new IllegalArgumentException("calibration data " + o.calibration() + " holds no usable rows ("
                        + skipped.value() + " rows without tokens): sparsegpt needs calibration tokens");
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
                done.add(pass(sc, calibration, spec.withModel(passModel), config, layers, retired, modelUri,
                        progressSeconds, pruned));
                if (retired != null) {
                    copies.delete(retired);
                }
                if (o.sequential() && i + 1 < passes.size()) {
                    retired = passModel.equals(modelUri) ? null : passModel;
                    passModel = copies.write(localModel, dense(pruned), layers[layers.length - 1]);
                }
            }
            Sparsifier.Result result = Sparsifier.write(localModel, Path.of(o.out()),
                    new Sparsifier.Provenance("sparsegpt", o.sequential(), rowsAndTokens[1]), (tensor, weights) -> {
                        PrunedWeight w = pruned.get(tensor.name());
                        return w == null ? null : Sparse24.decompress(w.packed());
                    });
            SparsifySummary summary = new SparsifySummary(o.sequential(), o.out(), rowsAndTokens[0], skipped.value(),
                    rowsAndTokens[1], done, result, (System.nanoTime() - start) / 1e9);
            try {
                summary.write(o.resolvedSummaryPath(), sc.hadoopConfiguration());
            } catch (IOException e) {
                System.err.println("moescore sparsify: could not write the summary to " + o.resolvedSummaryPath()
                        + ": " + e);
            }
            return summary;
        } finally {
            calibration.unpersist(false);
        }
    }

    /** Fails before any work where the model's experts cannot be pruned 2:4 by this job. */
    private static void checkPrunable(Path localModel, ModelConfig config, String model) {
        for (int cols : new int[] {config.hiddenSize(), config.expertFfnSize()}) {
            if (cols % 32 != 0) {
                throw new IllegalArgumentException("model " + model + ": 2:4 packing needs expert widths that are "
                        + "multiples of 32 (hidden " + config.hiddenSize() + ", expert ffn " + config.expertFfnSize()
                        + ")");
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

    /** One pass: calibration and solves of its layers (one Spark job of two stages); adds the pruned weights. */
    private static SparsifySummary.Pass pass(SparkContext sc, JavaRDD<int[]> calibration, ScoringSpec passSpec,
                                             ModelConfig config, int[] layers, String releaseModelUri,
                                             String denseModelUri, double progressSeconds,
                                             Map<String, PrunedWeight> pruned) {
        CollectionAccumulator<CalibrationStats> calibrated = sc.collectionAccumulator("moescore calibration");
        CollectionAccumulator<SolveStats> solved = sc.collectionAccumulator("moescore solves");
        JavaRDD<PrunedWeight> weights = ExpertHessianSums.of(calibration, passSpec, layers, config.numExperts(),
                        releaseModelUri, calibrated)
                .mapPartitions(new ExpertSolve(denseModelUri, passSpec.hadoopConf(), solved));
        long packedBytes = (long) layers.length * config.numExperts() * 3 * config.hiddenSize()
                * config.expertFfnSize() * 2;
        try (StageProgress p = StageProgress.start(sc, "layers " + Arrays.toString(layers),
                List.of("calibration", "solve"), progressSeconds, () -> sofar(calibrated, solved),
                System.err::println)) {
            if (packedBytes <= COLLECT_AT_ONCE_BYTES) {
                weights.collect().forEach(w -> pruned.put(w.name(), w));
            } else {
                // solves in parallel first, then the weights a partition at a time (spark.driver.maxResultSize)
                weights.persist(StorageLevel.MEMORY_AND_DISK()).count();
                weights.toLocalIterator().forEachRemaining(w -> pruned.put(w.name(), w));
                weights.unpersist(false);
            }
        }
        SparsifySummary.Pass pass = SparsifySummary.Pass.of(layers, calibrated.value(), solved.value());
        System.err.printf(Locale.ROOT, "moescore sparsify: layers %s: calibration %,d tokens in %.1f s (%,.0f "
                        + "tokens/s), %d Hessians solved in %.1f s%n", Arrays.toString(layers), pass.tokens(),
                pass.calibrationSeconds(), pass.tokensPerSecond(), pass.solves().size(), pass.solveSeconds());
        return pass;
    }

    private static String sofar(CollectionAccumulator<CalibrationStats> calibrated,
                                CollectionAccumulator<SolveStats> solved) {
        List<CalibrationStats> c = calibrated.value();
        return String.format(Locale.ROOT, "%,d calibration tokens, %d Hessians solved",
                c.stream().mapToLong(CalibrationStats::tokens).sum(), solved.value().size());
    }

    /** The pruned weights so far, dense (for the next sequential pass's model copy). */
    private static Map<String, float[]> dense(Map<String, PrunedWeight> pruned) {
        Map<String, float[]> out = new HashMap<>();
        pruned.forEach((name, w) -> out.put(name, Sparse24.decompress(w.packed())));
        return out;
    }

    static ScoringSpec spec(SparkContext sc, SparsifyOptions o, String modelUri) {
        Map<String, String> hadoop = new HashMap<>();
        for (Map.Entry<String, String> e : sc.hadoopConfiguration()) {
            hadoop.put(e.getKey(), e.getValue());
        }
        return new ScoringSpec(modelUri, o.scoring(), o.tokensColumn(), o.textColumn(), hadoop);
    }
}
