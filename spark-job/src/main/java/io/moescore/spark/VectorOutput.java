package io.moescore.spark;

import io.moescore.arrow.spark.ArrowCommitMessage;
import io.moescore.arrow.spark.ArrowFileCommit;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Date;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.mapreduce.Job;
import org.apache.hadoop.mapreduce.lib.output.FileOutputFormat;
import org.apache.spark.internal.io.FileCommitProtocol;
import org.apache.spark.internal.io.FileCommitProtocol.TaskCommitMessage;
import org.apache.spark.internal.io.SparkHadoopWriterUtils;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.execution.datasources.OutputWriterFactory;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.util.SerializableConfiguration;
import scala.jdk.javaapi.CollectionConverters;

/**
 * The job's direct writers (the default; {@code --output-writer rows} falls back to Spark's row writer): each task
 * writes its partition's output from the score vectors ({@link VectorWriteTask}), with no row objects, and the
 * driver commits the attempts that succeeded. The files, their names and schema are those the row writer makes:
 * Parquet and JSON through Spark's file commit protocol ({@code spark.sql.sources.commitProtocolClass}: a resumable
 * output's {@link SplitCommitProtocol} too) set up by Spark's own {@code prepareWrite}, Arrow through arrow-io's
 * {@link ArrowFileCommit} (the {@code arrow} data source's). Modes as the row writer: error (refused where the output
 * exists), overwrite (Parquet, JSON: the folder replaced; Arrow: its Arrow files), append. Every format rolls over to
 * a new part file after {@link #maxRecordsPerFile} rows, as Spark's row writer does for Parquet and JSON.
 */
final class VectorOutput {
    /** The DataFrameWriter option that overrides {@code spark.sql.files.maxRecordsPerFile}. */
    static final String MAX_RECORDS_PER_FILE = "maxRecordsPerFile";

    private VectorOutput() {
    }

    /** The writer the job uses, by {@code --output-writer}. */
    enum Writer {
        /** Straight from the score vectors (this class). */
        VECTORS,
        /** Spark's DataFrameWriter over the scored rows ({@link JobOutput}). */
        ROWS
    }

    /**
     * Writes {@code plan}'s output rows: {@code idColumn} (int ids widened to bigint) and {@code scoreColumns}.
     *
     * @param options extra write options, put into the tasks' Hadoop conf as a DataFrameWriter's are
     */
    static void write(SparkSession spark, DatasetScorer.Plan<?> plan, String idColumn, List<String> scoreColumns,
                      String format, String output, String mode, Map<String, String> options) {
        org.apache.spark.sql.classic.SparkSession session = (org.apache.spark.sql.classic.SparkSession) spark;
        scala.collection.immutable.Map<String, String> scalaOptions = scalaMap(options);
        Configuration conf = session.sessionState().newHadoopConfWithOptions(scalaOptions);
        StructField id = plan.schema().apply(idColumn);
        List<StructField> fields = new ArrayList<>();
        fields.add(new StructField(idColumn, id.dataType().equals(DataTypes.StringType) ? DataTypes.StringType
                : DataTypes.LongType, id.nullable(), id.metadata()));
        scoreColumns.forEach(c -> fields.add(plan.schema().apply(c)));
        StructType schema = DataTypes.createStructType(fields);
        int idOrdinal = plan.schema().fieldIndex(idColumn);
        DataType idType = id.dataType();
        String timeZone = session.sessionState().conf().sessionLocalTimeZone();
        VectorFormat vectorFormat = VectorFormat.of(format);
        long maxRecordsPerFile = maxRecordsPerFile(session, options);
        if (vectorFormat == VectorFormat.ARROW) {
            ArrowFileCommit files = ArrowFileCommit.start(output, mode.equals("overwrite"));
            VectorWriteTask task = new VectorWriteTask(vectorFormat, schema, idOrdinal, idType, timeZone,
                    maxRecordsPerFile, new VectorWriteTask.ArrowCommit(files, new SerializableConfiguration(conf)));
            try {
                List<ArrowCommitMessage> messages = plan.mapScored(task).collect().stream()
                        .map(m -> (ArrowCommitMessage) m).toList();
                files.commit(messages, conf);
            } catch (IOException | RuntimeException e) {
                abort(e, () -> files.abort(conf));
                throw e instanceof IOException io ? new java.io.UncheckedIOException("writing " + output
                        + " failed: " + io.getMessage(), io) : (RuntimeException) e;
            }
            return;
        }
        try {
            Path path = new Path(output);
            FileSystem fs = path.getFileSystem(conf);
            Path qualified = fs.makeQualified(path);
            String jobId = UUID.randomUUID().toString();
            FileCommitProtocol committer = FileCommitProtocol.instantiate(
                    session.sessionState().conf().fileCommitProtocolClass(), jobId, qualified.toString(), false);
            boolean exists = fs.exists(qualified);
            if (exists && mode.equals("error")) {
                throw JobOutput.alreadyExists(output, null);
            }
            if (exists && mode.equals("overwrite") && !committer.deleteWithJob(fs, qualified, true)) {
                throw new IOException("cannot delete " + qualified + " to overwrite it");
            }
            Job job = Job.getInstance(conf);
            job.setOutputKeyClass(Void.class);
            job.setOutputValueClass(InternalRow.class);
            FileOutputFormat.setOutputPath(job, qualified);
            OutputWriterFactory factory = vectorFormat.sparkFormat().prepareWrite(session, job, scalaOptions, schema);
            committer.setupJob(job);
            VectorWriteTask task = new VectorWriteTask(vectorFormat, schema, idOrdinal, idType, timeZone,
                    maxRecordsPerFile, new VectorWriteTask.HadoopCommit(committer, factory,
                            SparkHadoopWriterUtils.createJobTrackerID(new Date()),
                            new SerializableConfiguration(job.getConfiguration())));
            try {
                List<TaskCommitMessage> messages = plan.mapScored(task).collect().stream()
                        .map(m -> (TaskCommitMessage) m).toList();
                messages.forEach(committer::onTaskCommit);
                committer.commitJob(job, CollectionConverters.asScala(messages).toSeq());
            } catch (RuntimeException e) {
                abort(e, () -> committer.abortJob(job));
                throw e;
            }
        } catch (IOException e) {
            throw new java.io.UncheckedIOException("writing " + output + " failed: " + e.getMessage(), e);
        }
    }

    /**
     * Rows per file, resolved as Spark's FileFormatWriter resolves them: the write option {@code maxRecordsPerFile},
     * else the session's {@code spark.sql.files.maxRecordsPerFile} (default 0); 0 or less: unlimited.
     */
    static long maxRecordsPerFile(org.apache.spark.sql.classic.SparkSession session, Map<String, String> options) {
        String option = options.get(MAX_RECORDS_PER_FILE);
        if (option == null) {
            return session.sessionState().conf().maxRecordsPerFile();
        }
        try {
            return Long.parseLong(option.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("write option " + MAX_RECORDS_PER_FILE + " is not a number: "
                    + option, e);
        }
    }

    private interface Cleanup {
        void run() throws IOException;
    }

    /** Cleans up after a failed write; a failure of that is added to the first. */
    private static void abort(Exception failure, Cleanup cleanup) {
        try {
            cleanup.run();
        } catch (IOException | RuntimeException e) {
            failure.addSuppressed(e);
        }
    }

    private static scala.collection.immutable.Map<String, String> scalaMap(Map<String, String> map) {
        return scala.collection.immutable.Map$.MODULE$.from(CollectionConverters.asScala(map));
    }
}
