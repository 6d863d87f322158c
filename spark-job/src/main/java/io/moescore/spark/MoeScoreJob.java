package io.moescore.spark;

import io.moescore.batch.ScoreColumns;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.apache.spark.SparkConf;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.DataFrameReader;
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
import picocli.CommandLine.Option;

/**
 * The scoring job (spark-submit main class): reads token or text rows (Arrow IPC, Parquet or JSON lines, from
 * any Hadoop file system), scores them with {@link MoeScorer} (every executor's shared engine), writes one result
 * row per input row ({@code id} and the score columns) through Spark's commit protocol, and prints and writes a job
 * summary.
 *
 * <p>Exit codes: 0 every row scored, 2 bad options or unusable model/input/output, 3 some rows carry an error,
 * 1 anything else.
 */
@Command(name = "score", mixinStandardHelpOptions = true,
        description = "Scores token or text rows with an MoE model on a Spark cluster. Options fall back to "
                + "spark.moescore.<name> conf (e.g. spark.moescore.model).")
public final class MoeScoreJob implements Callable<Integer> {
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
    @Option(names = "--backend", description = "auto, cpu or cuda (conf: backend; default auto)")
    String backend;
    @Option(names = "--precision", description = "GPU precision: bf16 (fast), fp16 (as fast; fp16 checkpoints "
            + "exactly, 11-bit GEMM inputs) or split-bf16 (near-fp32 log-probs, 2-3x the GEMM work) (conf: precision; "
            + "default bf16)")
    String precision;
    @Option(names = "--deterministic", description = "batch-invariant GPU scores: a row's scores are bit-identical "
            + "whatever it is batched or partitioned with, 1-4% slower (conf: deterministic)")
    Boolean deterministic;
    @Option(names = "--batch-tokens", description = "tokens per forward pass (conf: batchTokens; default 8192)")
    Integer batchTokens;
    @Option(names = "--token-logprobs", description = "write each token's log-prob (conf: tokenLogprobs)")
    Boolean tokenLogProbs;
    @Option(names = "--top-k", description = "write the K most likely tokens after each sequence (conf: topK)")
    Integer topK;
    @Option(names = "--mode", description = "error (default), overwrite or append when the output exists (conf: mode)")
    String mode;
    @Option(names = "--partitions", description = "repartition the input into N partitions first (default: as read)")
    Integer partitions;
    @Option(names = "--resume", description = "commit input splits one by one into OUTPUT/_moescore_resume; rerun "
            + "with the same input, model and options to score only the splits not committed yet (conf: resume)")
    Boolean resume;
    @Option(names = "--summary", description = "where to write the JSON summary (default: OUTPUT.summary.json)")
    String summary;

    /** The options, resolved against a Spark conf. */
    ScoreJobOptions resolve(SparkConf conf) {
        List<String> in = inputs != null ? inputs : JobConf.list(conf.get(CONF_PREFIX + "input", ""));
        String inFormat = JobConf.pick(inputFormat, conf, "inputFormat",
                in.isEmpty() ? "parquet" : ScoreJobOptions.formatOf(in.get(0)));
        return new ScoreJobOptions(in, inFormat, JobConf.pick(output, conf, "output", null),
                JobConf.pick(outputFormat, conf, "outputFormat", "parquet"), JobConf.pick(model, conf, "model", null),
                JobConf.pick(backend, conf, "backend", "auto"), JobConf.pick(precision, conf, "precision", "bf16"),
                deterministic != null ? deterministic : conf.getBoolean(CONF_PREFIX + "deterministic", false),
                batchTokens != null ? batchTokens : conf.getInt(CONF_PREFIX + "batchTokens", 8192),
                tokenLogProbs != null ? tokenLogProbs : conf.getBoolean(CONF_PREFIX + "tokenLogprobs", false),
                topK != null ? topK : conf.getInt(CONF_PREFIX + "topK", 0),
                JobConf.pick(mode, conf, "mode", "error"), conf.get(CONF_PREFIX + "idColumn", ScoreColumns.ID),
                conf.get(CONF_PREFIX + "tokensColumn", ScoreColumns.TOKENS),
                conf.get(CONF_PREFIX + "textColumn", ScoreColumns.TEXT),
                partitions != null ? partitions : conf.getInt(CONF_PREFIX + "partitions", 0), summary,
                resume != null ? resume : conf.getBoolean(CONF_PREFIX + "resume", false));
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
            if (!(e instanceof org.apache.spark.SparkException)) {
                throw e instanceof RuntimeException r ? r : new IllegalStateException(e);
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

    /** Runs the job on a session; returns the exit code. Bad options, model or input throw IllegalArgumentException. */
    public static int run(SparkSession spark, ScoreJobOptions options) {
        JobSummary summary = score(spark, options);
        summary.print(System.err);
        return summary.errorRowsInOutput() == 0 ? EXIT_OK : EXIT_ROW_ERRORS;
    }

    /** Scores, writes the output and the summary, and returns the summary. */
    public static JobSummary score(SparkSession spark, ScoreJobOptions options) {
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
        CollectionAccumulator<TaskStats> stats = spark.sparkContext().collectionAccumulator("moescore task stats");
        List<Column> output = new ArrayList<>();
        output.add(column(options.idColumn()));
        scorer.scoreColumns().forEach(c -> output.add(column(c)));
        Dataset<Row> scores = scorer.score(input, stats).select(output.toArray(Column[]::new));
        // names the scoring jobs in Spark's UI (and lets tests tell them from schema inference or listing jobs)
        spark.sparkContext().setJobGroup(JobProgress.JOB_GROUP, "moescore scoring " + options.inputs() + " -> "
                + options.output(), false);
        double progressSeconds = Double.parseDouble(spark.conf().get(CONF_PREFIX + "progressSeconds", "30"));
        try (JobProgress progress = JobProgress.start(spark.sparkContext(), stats, progressSeconds,
                System.err::println)) {
            if (resume != null) {
                resume.write(scores);
            } else {
                scores.write().format(options.outputFormat()).mode(saveMode(options.mode(), options.outputFormat()))
                        .save(options.output());
            }
        } finally {
            spark.sparkContext().clearJobGroup();
        }
        JobSummary summary = JobSummary.of(stats.value(), (System.nanoTime() - start) / 1e9);
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

    /** The transformer the job runs, with the job's options as its parameters. */
    static MoeScorer scorer(ScoreJobOptions options) {
        return new MoeScorer().setModelPath(options.model()).setBackend(options.backend())
                .setPrecision(options.precision()).setDeterministic(options.deterministic())
                .setBatchTokens(options.batchTokens())
                .setTokenLogprobs(options.tokenLogProbs()).setTopK(options.topK())
                .setTokensCol(options.tokensColumn()).setTextCol(options.textColumn());
    }

    /**
     * The input columns the job scores and writes, checked by name and type: the id (bigint or string), tokens
     * and/or text, and the JSON reader's malformed-record column. Others are never read (Parquet and Arrow prune them).
     */
    static Dataset<Row> jobColumns(Dataset<Row> input, ScoreJobOptions options) {
        List<String> names = Arrays.asList(input.columns());
        if (!names.contains(options.idColumn())) {
            throw new IllegalArgumentException("input has no column '" + options.idColumn() + "' (columns: " + names + ")");
        }
        DataType idType = input.schema().apply(options.idColumn()).dataType();
        if (idType.equals(DataTypes.IntegerType)) {
            throw new IllegalArgumentException("column '" + options.idColumn() + "' has type int: cast it to bigint");
        }
        if (!idType.equals(DataTypes.StringType) && !idType.equals(DataTypes.LongType)) {
            throw new IllegalArgumentException("column '" + options.idColumn() + "' has type " + idType.simpleString()
                    + ", expected bigint or string");
        }
        List<Column> used = new ArrayList<>();
        for (String name : List.of(options.idColumn(), options.tokensColumn(), options.textColumn(),
                DatasetScorer.CORRUPT_RECORD)) {
            if (names.contains(name)) {
                used.add(column(name));
            }
        }
        return input.select(used.toArray(Column[]::new));
    }

    /** A column by its exact name (dots and other characters taken literally). */
    private static Column column(String name) {
        return functions.col("`" + name.replace("`", "``") + "`");
    }

    static Dataset<Row> read(SparkSession spark, ScoreJobOptions options) {
        return read(spark, options.inputs(), options.inputFormat());
    }

    static Dataset<Row> read(SparkSession spark, List<String> inputs, String format) {
        DataFrameReader reader = spark.read().format(format);
        if (format.equals("json")) {
            reader = reader.option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", DatasetScorer.CORRUPT_RECORD);
        }
        try {
            return reader.load(inputs.toArray(String[]::new));
        } catch (Exception e) { // Spark throws AnalysisException (checked) for missing paths and bad schemas
            if (e instanceof org.apache.spark.sql.AnalysisException) {
                throw new IllegalArgumentException("cannot read input " + inputs + " as " + format + ": "
                        + e.getMessage(), e);
            }
            throw e instanceof RuntimeException r ? r : new IllegalStateException(e);
        }
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
