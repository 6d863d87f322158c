package io.moescore.spark;

import io.moescore.batch.ScoreColumns;
import io.moescore.score.ScoreSettings;
import io.moescore.score.Setting;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.apache.spark.SparkConf;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.functions;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.util.CollectionAccumulator;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * The scoring job (spark-submit main class): reads token or text rows (Arrow IPC, Parquet or JSON lines, from
 * any Hadoop file system), scores them with {@link MoeScorer} (every executor's shared engine), writes one result
 * row per input row ({@code id} and the score columns) through Spark's commit protocol, and prints and writes a job
 * summary.
 *
 * <p>Exit codes: 0 every row scored, 2 bad options or unusable model/input/output, 3 some rows carry an error,
 * 1 anything else.
 */
@Command(name = "score", mixinStandardHelpOptions = true, modelTransformer = CommandSettings.Options.class,
        description = "Scores token or text rows with an MoE model on a Spark cluster. Options fall back to "
                + "spark.moescore.<name> conf (e.g. spark.moescore.model).")
public final class MoeScoreJob implements Callable<Integer>, CommandSettings.Command {
    public static final String CONF_PREFIX = "spark.moescore.";
    public static final int EXIT_OK = 0;
    public static final int EXIT_FAILED = 1;
    public static final int EXIT_BAD_INVOCATION = 2;
    public static final int EXIT_ROW_ERRORS = 3;

    @Option(names = "--input", description = "input file or folder; repeat for several (conf: input, comma-separated)")
    List<String> inputs;
    @Option(names = "--input-format", description = "arrow, parquet or json (default: from the first input's name)")
    String inputFormat;
    @Option(names = "--output", description = "output folder (conf: output)")
    String output;
    @Option(names = "--output-format", description = "arrow, parquet or json (default: parquet)")
    String outputFormat;
    @Option(names = "--model", description = "model directory, local or any Hadoop FS URI (conf: model)")
    String model;
    @Option(names = "--mode", description = "error (default), overwrite or append when the output exists (conf: mode)")
    String mode;
    @Option(names = "--resume", description = "commit input splits one by one into OUTPUT/_moescore_resume; rerun "
            + "with the same input, model and options to score only the splits not committed yet (conf: resume)")
    Boolean resume;
    @Option(names = "--summary", description = "where to write the JSON summary (default: OUTPUT.summary.json)")
    String summary;
    @Option(names = "--routing-trace", paramLabel = "DIR", description = "also write the routing trace into DIR: per "
            + "batch and MoE layer the tokens each expert received, with executor, device, partition and batch ids "
            + "(Parquet; Arrow IPC where the output is Arrow); read it with `moescore traces` and `moescore "
            + "placement` (conf: routingTrace)")
    String routingTrace;
    @Option(names = "--routing-trace-tokens", description = "the routing trace also holds each token's chosen "
            + "experts and gate weights, per scored row and MoE layer, in DIR/tokens/ (Parquet; needs "
            + "--routing-trace; on a GPU each MoE layer then waits for its routing) (conf: routingTraceTokens)")
    Boolean routingTraceTokens;

    @Spec
    CommandSpec spec;

    /**
     * Scoring settings ({@link ScoreSettings}: their flags come from {@link CommandSettings}), --partitions and
     * --output-writer.
     */
    static final List<Setting<?>> SETTINGS = Setting.concat(ScoreSettings.ALL,
            List.of(ScoreJobOptions.PARTITIONS, ScoreJobOptions.OUTPUT_WRITER));

    @Override
    public List<Setting<?>> settings() {
        return SETTINGS;
    }

    /** The options, resolved against a Spark conf. */
    public ScoreJobOptions resolve(SparkConf conf) {
        List<String> in = inputs != null ? inputs : JobConf.list(conf.get(CONF_PREFIX + "input", ""));
        String inFormat = JobConf.pick(inputFormat, conf, "inputFormat",
                in.isEmpty() ? "parquet" : ScoreJobOptions.formatOf(in.get(0)));
        Setting.Source given = CommandSettings.source(spec, conf);
        return new ScoreJobOptions(in, inFormat, JobConf.pick(output, conf, "output", null),
                JobConf.pick(outputFormat, conf, "outputFormat", "parquet"), JobConf.pick(model, conf, "model", null),
                ScoreSettings.resolve(given), JobConf.pick(mode, conf, "mode", "error"),
                conf.get(CONF_PREFIX + "idColumn", ScoreColumns.ID),
                conf.get(CONF_PREFIX + "tokensColumn", ScoreColumns.TOKENS),
                conf.get(CONF_PREFIX + "textColumn", ScoreColumns.TEXT),
                ScoreJobOptions.PARTITIONS.resolve(given), summary,
                resume != null ? resume : conf.getBoolean(CONF_PREFIX + "resume", false),
                JobConf.pick(routingTrace, conf, "routingTrace", null), ScoreJobOptions.OUTPUT_WRITER.resolve(given),
                routingTraceTokens != null ? routingTraceTokens
                        : conf.getBoolean(CONF_PREFIX + "routingTraceTokens", false));
    }

    public static void main(String[] args) {
        JobExit.exit(new CommandLine(new MoeScoreJob()).execute(args));
    }

    @Override
    public Integer call() {
        SparkSession spark = SparkSession.builder().appName("moescore score").getOrCreate();
        ScoreJobOptions options = null;
        try {
            options = resolve(spark.sparkContext().getConf());
            return run(spark, options);
        } catch (IllegalArgumentException e) {
            System.err.println("moescore: " + e.getMessage());
            return EXIT_BAD_INVOCATION;
        } catch (Exception e) {  // Spark's SparkException is checked in Java's eyes but undeclared
            if (!(e instanceof org.apache.spark.SparkException) && !readFailure(e)) {
                throw e instanceof RuntimeException r ? r : new IllegalStateException(e);
            }
            io.moescore.model.ModelFormatException model = modelProblem(e);
            if (model != null) {  // executors could not load the model (non-finite weights, ...): nothing committed
                System.err.println("moescore: " + model.getMessage());
                return EXIT_BAD_INVOCATION;
            }
            // a task failed spark.task.maxFailures times (input unreadable or gone, executors lost): the commit
            // protocol left no visible output; Spark's message names the file or stage
            System.err.println(options != null && options.resume()
                    ? "moescore: the job failed; the splits it committed stay in " + options.output() + "/"
                            + ResumableOutput.FOLDER + ": rerun with --resume to score the rest: " + e.getMessage()
                    : "moescore: the job failed and committed no output: " + e.getMessage());
            return EXIT_FAILED;
        } finally {
            spark.stop();
        }
    }

    /**
     * Whether an input file could not be read while the job ran (an IOException among the causes, e.g. a file gone
     * between listing and reading, met by a driver-side pass over the input): a failed job, not a moescore bug.
     */
    static boolean readFailure(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof java.io.IOException) {
                return true;
            }
        }
        return false;
    }

    /** The model problem that failed the tasks (a ModelFormatException in the causes), or null. */
    public static io.moescore.model.ModelFormatException modelProblem(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
            if (t instanceof io.moescore.model.ModelFormatException m) {
                return m;
            }
        }
        return null;
    }

    /** Runs the job on a session; returns the exit code. Bad options, model or input throw IllegalArgumentException. */
    public static int run(SparkSession spark, ScoreJobOptions options) {
        JobSummary summary = score(spark, options);
        summary.print(System.err);
        return summary.errorRowsInOutput() == 0 ? EXIT_OK : EXIT_ROW_ERRORS;
    }

    /**
     * Scores, writes the output and the summary, and returns the summary. First refuses an output or summary path
     * that overlaps an input or the model ({@link OutputGuard}), then claims the output against concurrent jobs
     * ({@link OutputLock}) until the summary is written.
     */
    public static JobSummary score(SparkSession spark, ScoreJobOptions options) {
        OutputGuard.check(options, spark.sparkContext().hadoopConfiguration());
        try (OutputLock lock = OutputLock.claim(options.output(), spark.sparkContext())) {
            return scoreClaimed(spark, options);
        }
    }

    private static JobSummary scoreClaimed(SparkSession spark, ScoreJobOptions options) {
        long start = System.nanoTime();
        Configuration hadoop = spark.sparkContext().hadoopConfiguration();
        ResumeRun resume = options.resume() ? ResumeRun.start(options, hadoop) : null;
        if (resume == null) {
            checkOutput(options, hadoop);
        }
        if (options.inputFormat().equals("parquet")
                && spark.sparkContext().getConf().getBoolean(CONF_PREFIX + "checkParquetFooters", true)) {
            ParquetInputCheck.check(options.inputs(), hadoop);
        }
        Dataset<Row> input = jobColumns(read(spark, options), options);
        if (options.partitions() > 0) {
            // a resumed run must put every row into the same split as the run before it: by its id's hash
            input = resume != null ? input.repartition(options.partitions(), column(options.idColumn()))
                    : input.repartition(options.partitions());
        }
        if (resume != null) {
            input = resume.remaining(input);
        }
        MoeScorer scorer = scorer(options);
        RoutingTraceOutput trace = options.routingTrace() == null ? null
                : RoutingTraceOutput.of(options.routingTrace(), options.outputFormat(), options.routingTraceTokens(),
                        hadoop).withIds(input.schema().fieldIndex(options.idColumn()),
                        input.schema().apply(options.idColumn()).dataType());
        if (trace != null) {
            trace.prepare(options.mode());
        }
        TaskReports reports = TaskReports.register(spark.sparkContext(), trace);
        CollectionAccumulator<TaskStats> stats = reports.stats();
        List<String> scoreColumns = scorer.scoreColumns(input.schema());
        boolean direct = options.outputWriter() == ScoreJobOptions.OutputWriter.VECTORS;
        DatasetScorer.Plan<?> plan = direct ? scorer.plan(input, reports) : null;
        Dataset<Row> scores = direct ? null : scoredRows(scorer.score(input, reports), input, scoreColumns, options);
        // names the scoring jobs in Spark's UI (and lets tests tell them from schema inference or listing jobs)
        spark.sparkContext().setJobGroup(JobProgress.JOB_GROUP, "moescore scoring " + options.inputs() + " -> "
                + options.output(), false);
        double progressSeconds = Double.parseDouble(spark.conf().get(CONF_PREFIX + "progressSeconds", "30"));
        try (JobProgress progress = JobProgress.start(spark.sparkContext(), reports, progressSeconds,
                System.err::println)) {
            if (direct && resume != null) {
                resume.write(spark, plan, options.idColumn(), scoreColumns);
            } else if (direct) {
                VectorOutput.write(spark, plan, options.idColumn(), scoreColumns, options.outputFormat(),
                        options.output(), options.mode(), Map.of());
            } else if (resume != null) {
                resume.write(scores);
            } else {
                JobOutput.save(JobOutput.writer(scores, options.outputFormat())
                        .mode(saveMode(options.mode(), options.outputFormat())), options.output());
            }
        } finally {
            spark.sparkContext().clearJobGroup();
        }
        if (trace != null) {
            commitTrace(trace, stats.value(), options);
        }
        JobSummary summary = JobSummary.of(stats.value(), (System.nanoTime() - start) / 1e9)
                .withSettings(options.scoring());
        if (resume != null) {
            summary = summary.withResume(resume.finish());
        }
        try {
            summary.write(options.resolvedSummaryPath(), hadoop);
        } catch (IOException e) {
            System.err.println("moescore: could not write the summary to " + options.resolvedSummaryPath() + ": " + e);
        }
        return summary;
    }

    /** The row writer's output rows: the id (int ids as bigint, after scoring: the scan stays columnar) and scores. */
    private static Dataset<Row> scoredRows(Dataset<Row> scored, Dataset<Row> input, List<String> scoreColumns,
                                           ScoreJobOptions options) {
        List<Column> output = new ArrayList<>();
        Column id = column(options.idColumn());
        output.add(widenedId(input.schema().apply(options.idColumn()).dataType())
                ? id.cast(DataTypes.LongType).as(options.idColumn()) : id);
        scoreColumns.forEach(c -> output.add(column(c)));
        return scored.select(output.toArray(Column[]::new));
    }

    /** Keeps the succeeded tasks' trace files and says what tracing cost (its share of the tasks' time). */
    private static void commitTrace(RoutingTraceOutput trace, List<TaskStats> stats, ScoreJobOptions options) {
        try {
            int files = trace.commit(stats, options.model());
            long traceNanos = stats.stream().mapToLong(TaskStats::traceNanos).sum();
            long taskNanos = stats.stream().mapToLong(s -> s.endNanos() - s.startNanos()).sum();
            System.err.printf(java.util.Locale.ROOT, "moescore: routing trace: %d file(s) in %s (%s); writing it took "
                    + "%.2f%% of the tasks' time%n", files, options.routingTrace(), trace.format().name()
                    .toLowerCase(java.util.Locale.ROOT), taskNanos > 0 ? 100.0 * traceNanos / taskNanos : 0.0);
        } catch (IOException e) {
            // the scores are committed: the trace is lost, not the job
            System.err.println("moescore: could not commit the routing trace in " + options.routingTrace() + ": " + e);
        }
    }

    /** The transformer the job runs, with the job's options as its parameters. */
    static MoeScorer scorer(ScoreJobOptions options) {
        return new MoeScorer().setModelPath(options.model()).setSettings(options.scoring())
                .setTokensCol(options.tokensColumn()).setTextCol(options.textColumn());
    }

    /**
     * The input columns the job scores and writes, checked by name and type: the id (bigint or string), tokens
     * and/or text, continuation scoring's context and continuation, and the JSON reader's malformed-record column.
     * Others are never read (Parquet and Arrow prune them).
     */
    static Dataset<Row> jobColumns(Dataset<Row> input, ScoreJobOptions options) {
        List<String> names = Arrays.asList(input.columns());
        if (!names.contains(options.idColumn())) {
            throw new IllegalArgumentException("input has no column '" + options.idColumn() + "' (columns: " + names + ")");
        }
        DataType idType = input.schema().apply(options.idColumn()).dataType();
        if (!idType.equals(DataTypes.StringType) && !idType.equals(DataTypes.LongType) && !widenedId(idType)) {
            throw new IllegalArgumentException("column '" + options.idColumn() + "' has type " + idType.simpleString()
                    + ", expected bigint, int or string");
        }
        List<Column> used = new ArrayList<>();
        for (String name : List.of(options.idColumn(), options.tokensColumn(), options.textColumn(),
                ScoreColumns.CONTEXT, ScoreColumns.CONTINUATION, DatasetScorer.CORRUPT_RECORD)) {
            if (names.contains(name)) {
                used.add(column(name));
            }
        }
        return input.select(used.toArray(Column[]::new));
    }

    /** Ids of these types (int, smallint, tinyint) are read and written as bigint. */
    private static boolean widenedId(DataType type) {
        return type.equals(DataTypes.IntegerType) || type.equals(DataTypes.ShortType)
                || type.equals(DataTypes.ByteType);
    }

    /** A column by its exact name (dots and other characters taken literally). */
    static Column column(String name) {
        return functions.col("`" + name.replace("`", "``") + "`");
    }

    static Dataset<Row> read(SparkSession spark, ScoreJobOptions options) {
        return JobInput.read(spark, options.inputs(), options.inputFormat(), options.idColumn(),
                options.tokensColumn(), options.textColumn());
    }

    private static void checkOutput(ScoreJobOptions options, Configuration conf) {
        if (!options.mode().equals("error")) {
            return;
        }
        try {
            Path out = new Path(options.output());
            if (out.getFileSystem(conf).exists(out)) {
                throw new IllegalArgumentException("output " + options.output()
                        + " already exists: pass --mode overwrite to replace it or --mode append to add to it");
            }
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot check output " + options.output() + ": " + e.getMessage(), e);
        }
    }

    /**
     * The Spark save mode for --mode. "error" is enforced by {@link #checkOutput} before the job starts; the built-in
     * file sources (parquet, json) also get ErrorIfExists, which repeats that check when writing. Spark 4.1 refuses
     * ErrorIfExists for DataSource V2 table providers such as arrow-io's "arrow" source, so those write with Append,
     * which creates the output that checkOutput found absent (and never deletes anything, should it appear meanwhile).
     */
    private static SaveMode saveMode(String mode, String format) {
        return switch (mode) {
            case "overwrite" -> SaveMode.Overwrite;
            case "append" -> SaveMode.Append;
            default -> format.equals("arrow") ? SaveMode.Append : SaveMode.ErrorIfExists;
        };
    }
}
