package io.moescore.spark;

import io.moescore.batch.ScoreColumns;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.rdd.PartitionPruningRDD;
import org.apache.spark.sql.DataFrameWriter;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.catalyst.InternalRow;
import scala.runtime.AbstractFunction1;

/**
 * One run of the job with {@code --resume}: checks that the output was started with this input, model and options
 * (or starts it), scores only the input splits not committed yet, commits each split as its task finishes
 * ({@link SplitCommitProtocol}), and when all are committed promotes them into the output.
 */
final class ResumeRun {
    private static final String COMMIT_PROTOCOL_CONF = "spark.sql.sources.commitProtocolClass";

    private final ScoreJobOptions options;
    private final Configuration conf;
    private final ResumableOutput output;
    private List<String> allSplits = List.of();
    private List<String> remainingSplits = List.of();

    private ResumeRun(ScoreJobOptions options, Configuration conf) {
        this.options = options;
        this.conf = conf;
        this.output = new ResumableOutput(options.output());
    }

    /**
     * Starts a resumable output, or checks that the existing one was started with this input, model and options.
     * Throws IllegalArgumentException naming what differs, or why the output cannot be resumed.
     */
    static ResumeRun start(ScoreJobOptions options, Configuration conf) {
        if (!options.mode().equals("error")) {
            throw new IllegalArgumentException("--resume cannot be combined with --mode " + options.mode()
                    + ": it continues the output it started (delete the output to start over)");
        }
        if (options.outputFormat().equals("arrow")) {
            throw new IllegalArgumentException("--resume writes parquet or json output, not --output-format arrow");
        }
        ResumeRun run = new ResumeRun(options, conf);
        ResumeManifest now = ResumeManifest.of(options, conf);
        try {
            Path out = new Path(options.output());
            FileSystem fs = out.getFileSystem(conf);
            Path manifest = run.output.manifest();
            if (fs.exists(manifest)) {
                List<String> differences = ResumeManifest.read(manifest, conf).differences(now);
                if (!differences.isEmpty()) {
                    throw new IllegalArgumentException("--resume: " + options.output() + " was started with a "
                            + "different " + String.join(", ", differences) + "; rerun with what it was started "
                            + "with, or delete it to start over");
                }
            } else if (fs.exists(out)) {
                throw new IllegalArgumentException("output " + options.output() + " already exists and holds no "
                        + "resumable run (" + manifest + "): delete it or choose another output");
            } else {
                now.write(manifest, conf);
            }
        } catch (IOException e) {
            throw new IllegalArgumentException("--resume: cannot read or start " + options.output() + ": "
                    + e.getMessage(), e);
        }
        return run;
    }

    /** The splits of {@code input} not committed yet, as a DataFrame of the same schema. */
    Dataset<Row> remaining(Dataset<Row> input) {
        JavaRDD<InternalRow> rows = SparkInternals.internalRows(input);
        allSplits = InputSplits.ids(rows.rdd(), options.partitions() > 0);
        Set<String> committed;
        try {
            committed = output.committed(conf);
        } catch (IOException e) {
            throw new IllegalStateException("cannot list the committed splits of " + options.output(), e);
        }
        boolean[] keep = new boolean[allSplits.size()];
        List<String> remaining = new ArrayList<>();
        for (int i = 0; i < keep.length; i++) {
            keep[i] = !committed.contains(allSplits.get(i));
            if (keep[i]) {
                remaining.add(allSplits.get(i));
            }
        }
        remainingSplits = remaining;
        JavaRDD<InternalRow> pruned = PartitionPruningRDD.create(rows.rdd(), new KeepPartitions(keep)).toJavaRDD();
        return SparkInternals.dataFrame(input.sparkSession(), pruned, input.schema());
    }

    /** Writes the scores of the remaining splits, committing each split as its task finishes. */
    void write(Dataset<Row> scores) {
        if (remainingSplits.isEmpty()) {
            return;
        }
        List<String> columns = Arrays.asList(scores.columns());
        JavaRDD<InternalRow> counted = SparkInternals.internalRows(scores).mapPartitions(new SplitRowCounter(
                columns.indexOf(ScoreColumns.NUM_TOKENS),
                columns.indexOf(ScoreColumns.ERROR)));
        SparkSession spark = scores.sparkSession();
        withSplitCommits(spark, () -> {
            DataFrameWriter<Row> writer = JobOutput.writer(SparkInternals.dataFrame(spark, counted, scores.schema()),
                    options.outputFormat()).mode(SaveMode.Overwrite);
            writeOptions().forEach(writer::option);
            writer.save(output.staging().toString());
        });
    }

    /**
     * {@link #write(Dataset)} by the direct writers ({@link VectorOutput}): the same staging folder, commit protocol
     * and options; the tasks count their rows as they write.
     */
    void write(SparkSession spark, DatasetScorer.Plan<?> plan, String idColumn, List<String> scoreColumns) {
        if (remainingSplits.isEmpty()) {
            return;
        }
        withSplitCommits(spark, () -> VectorOutput.write(spark, plan, idColumn, scoreColumns, options.outputFormat(),
                output.staging().toString(), "overwrite", writeOptions()));
    }

    /** What the staging write passes its tasks: version-2 commits and where each split is committed. */
    private Map<String, String> writeOptions() {
        return Map.of("mapreduce.fileoutputcommitter.algorithm.version", "2",
                SplitCommitProtocol.OUTPUT_OPTION, options.output(),
                SplitCommitProtocol.SPLIT_IDS_OPTION, String.join(",", remainingSplits));
    }

    /** Runs {@code write} with {@link SplitCommitProtocol} as the session's file commit protocol. */
    private static void withSplitCommits(SparkSession spark, Runnable write) {
        String protocol = spark.conf().get(COMMIT_PROTOCOL_CONF);
        spark.conf().set(COMMIT_PROTOCOL_CONF, SplitCommitProtocol.class.getName());
        try {
            write.run();
        } finally {
            spark.conf().set(COMMIT_PROTOCOL_CONF, protocol);
        }
    }

    /** Promotes every split into the output; returns what was reused and what scored. */
    JobSummary.ResumeCounts finish() {
        try {
            int splitsReused = allSplits.size() - remainingSplits.size();
            long rowsReused = 0;
            long errorRowsReused = 0;
            long rowsScored = 0;
            Set<String> scoredNow = Set.copyOf(remainingSplits);
            for (String id : allSplits) {
                SplitRowCounter.Counts c = output.counts(id, conf);
                if (scoredNow.contains(id)) {
                    rowsScored += c.rows();
                } else {
                    rowsReused += c.rows();
                    errorRowsReused += c.errorRows();
                }
            }
            output.promote(allSplits, conf);
            return new JobSummary.ResumeCounts(splitsReused, rowsReused, errorRowsReused, remainingSplits.size(),
                    rowsScored);
        } catch (IOException e) {
            throw new IllegalStateException("cannot promote the committed splits of " + options.output()
                    + " (rerun with --resume to finish): " + e.getMessage(), e);
        }
    }

    /** PartitionPruningRDD's filter: keeps partition i where keep[i]. */
    private static final class KeepPartitions extends AbstractFunction1<Object, Object>
            implements java.io.Serializable {
        private final boolean[] keep;

        KeepPartitions(boolean[] keep) {
            this.keep = keep;
        }

        @Override
        public Object apply(Object partitionIndex) {
            return keep[(Integer) partitionIndex];
        }
    }
}
