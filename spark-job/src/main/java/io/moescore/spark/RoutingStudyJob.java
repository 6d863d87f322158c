package io.moescore.spark;

import io.moescore.batch.ScoreColumns;
import io.moescore.report.RoutingStudyReport;
import io.moescore.routing.RoutingSpec;
import io.moescore.score.LocalScoreOptions;
import io.moescore.score.RoutingStudy;
import io.moescore.score.RoutingStudyOptions;
import io.moescore.score.ScoreSettings;
import io.moescore.score.Setting;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import org.apache.spark.SparkConf;
import org.apache.spark.sql.SparkSession;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * The routing study as a Spark job (spark-submit main class; {@code moescore routing-study-job}): the single-process
 * {@code moescore routing-study}'s comparison of router variants over any input the scoring job reads, scored on the
 * cluster ({@link RoutingStudyScoring}), written by the same {@link RoutingStudyReport} into {@code --out} on the
 * driver. Every variant is checked against the model and the backend on the driver ({@link DatasetScorer#checkModel})
 * before the input is read. No {@code --propose-drops} here (the single-process study has it).
 *
 * <p>Exit codes: 0 done, 2 bad options, variant, model or input (before any scoring job runs), 3 the study is written
 * but some rows carry an error, 1 anything else.
 */
@Command(name = "routing-study-job", mixinStandardHelpOptions = true,
        modelTransformer = CommandSettings.Options.class,
        description = "The routing study on a Spark cluster: scores token or text rows (any input the scoring job "
                + "reads) once per router variant, the model's own router first, and compares them: perplexity and "
                + "its ratio to the model's router, expert FLOPs executed, tokens/s, rows whose top-1 next token "
                + "changed. Writes routing_study.json, .md and .html into --out on the driver. Options fall back to "
                + "spark.moescore.<name> conf.")
public final class RoutingStudyJob implements Callable<Integer>, CommandSettings.Command {
    private static final String NAME = "moescore routing-study-job: ";

    @Option(names = "--input", description = "input file or folder; repeat for several (conf: input, comma-separated)")
    List<String> inputs;
    @Option(names = "--input-format", description = "arrow, parquet or json (default: from the first input's name)")
    String inputFormat;
    @Option(names = "--model", description = "model directory, local or any Hadoop FS URI (conf: model)")
    String model;

    @Spec
    CommandSpec spec;

    /** --variants, --out, --overwrite, --partitions, then the study's scoring settings. */
    static final List<Setting<?>> SETTINGS = Setting.concat(List.of(RoutingStudyOptions.VARIANTS,
            RoutingStudyOptions.OUT, LocalScoreOptions.OVERWRITE, ScoreJobOptions.PARTITIONS),
            RoutingStudyOptions.SCORING);

    /**
     * The job's options.
     *
     * @param variants the model's own router first ({@link RoutingStudyOptions#withBaseline})
     * @param out      the folder of the report's files, on the driver
     */
    public record Options(List<String> inputs, String inputFormat, String model, List<RoutingSpec> variants, Path out,
                          boolean overwrite, int partitions, ScoreSettings settings) {
        public Options {
            if (inputs == null || inputs.isEmpty()) {
                throw new IllegalArgumentException("no input: pass --input PATH or set spark.moescore.input");
            }
            if (model == null || model.isBlank()) {
                throw new IllegalArgumentException("no model: pass --model DIR or set spark.moescore.model");
            }
            if (!ScoreJobOptions.FORMATS.contains(inputFormat)) {
                throw new IllegalArgumentException("--input-format '" + inputFormat + "' is not one of "
                        + ScoreJobOptions.FORMATS);
            }
            inputs = List.copyOf(inputs);
            variants = RoutingStudyOptions.withBaseline(variants);
        }
    }

    @Override
    public List<Setting<?>> settings() {
        return SETTINGS;
    }

    /** The options, resolved against a Spark conf. */
    public Options resolve(SparkConf conf) {
        List<String> in = inputs != null ? inputs : JobConf.list(conf.get(MoeScoreJob.CONF_PREFIX + "input", ""));
        Setting.Source given = CommandSettings.source(spec, conf);
        return new Options(in, JobConf.pick(inputFormat, conf, "inputFormat",
                in.isEmpty() ? "parquet" : ScoreJobOptions.formatOf(in.get(0))),
                JobConf.pick(model, conf, "model", null), RoutingStudyOptions.VARIANTS.resolve(given).specs(),
                RoutingStudyOptions.OUT.resolve(given), LocalScoreOptions.OVERWRITE.resolve(given),
                ScoreJobOptions.PARTITIONS.resolve(given), ScoreSettings.resolve(given));
    }

    public static void main(String[] args) {
        JobExit.exit(new CommandLine(new RoutingStudyJob()).execute(args));
    }

    @Override
    public Integer call() {
        SparkSession spark = SparkSession.builder().appName("moescore routing study").getOrCreate();
        try {
            return run(spark, resolve(spark.sparkContext().getConf()), System.err);
        } catch (IllegalArgumentException e) {
            System.err.println(NAME + e.getMessage());
            return MoeScoreJob.EXIT_BAD_INVOCATION;
        } finally {
            spark.stop();
        }
    }

    /**
     * Runs the study and writes its files; returns the exit code. Bad options, variants, model or input: exit 2,
     * with the message on {@code log}, before any scoring job runs (reading the input's schema may run one).
     */
    public static int run(SparkSession spark, Options options, PrintStream log) {
        RoutingStudy.Result result;
        try {
            RoutingStudyReport.check(options.out(), options.overwrite(), false);
            check(spark, options);
            result = study(spark, options, log);
        } catch (IllegalArgumentException | IOException e) {
            log.println(NAME + e.getMessage());
            return MoeScoreJob.EXIT_BAD_INVOCATION;
        } catch (Exception e) {  // Spark's SparkException is checked in Java's eyes but undeclared
            if (!(e instanceof org.apache.spark.SparkException) && !MoeScoreJob.readFailure(e)) {
                throw e instanceof RuntimeException r ? r : new IllegalStateException(e);
            }
            io.moescore.model.ModelFormatException model = MoeScoreJob.modelProblem(e);
            log.println(NAME + (model != null ? model.getMessage() : "the study failed, nothing written: "
                    + e.getMessage()));
            return model != null ? MoeScoreJob.EXIT_BAD_INVOCATION : MoeScoreJob.EXIT_FAILED;
        }
        System.out.print(RoutingStudyReport.markdown(result));
        try {
            for (Path p : RoutingStudyReport.write(options.out(), result, options.overwrite())) {
                log.println(NAME + "wrote " + p);
            }
        } catch (IOException e) {
            log.println(NAME + "cannot write the study into --out " + options.out() + ": " + e.getMessage());
            return MoeScoreJob.EXIT_FAILED;
        }
        return result.rowErrors() ? MoeScoreJob.EXIT_ROW_ERRORS : MoeScoreJob.EXIT_OK;
    }

    /** Checks every variant against the model's config and the backend, on the driver, before any data is read. */
    private static void check(SparkSession spark, Options options) {
        java.util.Map<String, String> hadoop = ModelFiles.hadoopEntries(spark.sparkContext());
        for (RoutingSpec v : options.variants()) {
            Runnable check = () -> DatasetScorer.checkModel(new ScoringSpec(ModelFiles.forExecutors(options.model()),
                    options.settings().with(ScoreSettings.ROUTING, v), ScoreColumns.TOKENS, ScoreColumns.TEXT, hadoop));
            if (v.isModel()) {  // the model itself (first): its refusal is not the variants'
                check.run();
            } else {
                RoutingStudy.check(check);
            }
        }
    }

    private static RoutingStudy.Result study(SparkSession spark, Options options, PrintStream log) {
        try (RoutingStudyScoring scoring = RoutingStudyScoring.read(spark, options)) {
            log.printf(Locale.ROOT, "%s%d rows, %d tokens, %d variants%n", NAME, scoring.rows(), scoring.tokens(),
                    options.variants().size());
            scoring.warmUp();
            List<RoutingStudy.Variant> variants = new ArrayList<>();
            for (int i = 0; i < options.variants().size(); i++) {
                RoutingStudy.Variant v = scoring.score(options.variants().get(i));
                variants.add(v);
                log.printf(Locale.ROOT, "%s[%d/%d] %s: perplexity %.4f (x%.4f), expert FLOPs x%.3f, %.0f tokens/s, "
                        + "top-1 changed in %d of %d rows%n", NAME, i + 1, options.variants().size(), v.spec(),
                        v.perplexity(), v.perplexityRatio(), v.expertFlopShare(), v.tokensPerSecond(),
                        v.top1Changed(), v.top1Compared());
            }
            return new RoutingStudy.Result(options.model(), String.join(",", options.inputs()),
                    device(spark, scoring.baselineSummary()), scoring.rows(), scoring.tokens(), List.copyOf(variants),
                    java.util.Map.of(), notes(variants, scoring));
        }
    }

    /** The cluster the study ran on: the master, and the executors' devices as the baseline's tasks saw them. */
    private static String device(SparkSession spark, JobSummary summary) {
        List<String> devices = summary.executors().stream().map(JobSummary.ExecutorLine::device).distinct().toList();
        return "Spark " + spark.sparkContext().master() + ", " + summary.executors().size() + " executor(s): "
                + String.join(", ", devices);
    }

    private static List<String> notes(List<RoutingStudy.Variant> variants, RoutingStudyScoring scoring) {
        List<String> notes = new ArrayList<>();
        notes.add(RoutingStudy.FLOPS_NOTE);
        if (variants.get(0).routedPairs() == 0) {
            notes.add("expert FLOP share not available: the executors reported no expert load for the baseline");
        }
        notes.add("tokens/s: input tokens / wall time of each variant's Spark job, which scores the rows, caches "
                + "the scores and sums them (the top-1 comparison with the baseline runs after it, untimed); the "
                + "input was read and tokenized once and cached, the weights loaded (one copy per executor for "
                + "every variant) and one row per partition scored before the baseline; speed-up: relative to the "
                + "baseline");
        if (scoring.unreadable() > 0) {
            notes.add(scoring.unreadable() + " input row(s) had no usable tokens (malformed, null or not "
                    + "tokenizable): counted as row errors of every variant");
        }
        if (variants.stream().anyMatch(RoutingStudy.Variant::batchDependent)) {
            notes.add(RoutingStudy.BATCH_DEPENDENT_NOTE);
        }
        return notes;
    }
}
