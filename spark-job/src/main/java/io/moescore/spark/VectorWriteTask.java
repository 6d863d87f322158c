package io.moescore.spark;

import io.moescore.arrow.spark.ArrowCommitMessage;
import io.moescore.arrow.spark.ArrowFileCommit;
import io.moescore.batch.ScoreColumns;
import java.io.IOException;
import java.io.Serializable;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import org.apache.arrow.vector.FieldVector;
import org.apache.arrow.vector.IntVector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.mapred.JobID;
import org.apache.hadoop.mapreduce.TaskAttemptContext;
import org.apache.hadoop.mapreduce.TaskAttemptID;
import org.apache.hadoop.mapreduce.TaskID;
import org.apache.hadoop.mapreduce.TaskType;
import org.apache.hadoop.mapreduce.task.TaskAttemptContextImpl;
import org.apache.spark.TaskContext;
import org.apache.spark.internal.io.FileCommitProtocol;
import org.apache.spark.internal.io.FileNameSpec;
import org.apache.spark.internal.io.SparkHadoopWriterUtils;
import org.apache.spark.sql.execution.datasources.OutputWriterFactory;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.util.SerializableConfiguration;
import scala.Option;

/**
 * One task of a direct write ({@link VectorOutput}): takes its partition's scores batch by batch, fills the output
 * vectors once per batch ({@link OutputVectors}) and writes them into the task attempt's file ({@link VectorFormat}),
 * then commits the attempt through the write's commit protocol ({@link Commit}) and returns its commit message. A
 * failure deletes what the attempt wrote (the protocol's task abort) and fails the task. Counts rows, error rows and
 * tokens for a resumable output's split commit ({@link SplitRowCounter}).
 */
final class VectorWriteTask implements DatasetScorer.ScoredFunction<Object> {
    private final VectorFormat format;
    private final StructType output;
    private final int idOrdinal;
    private final DataType idType;
    private final String timeZone;
    private final Commit commit;

    VectorWriteTask(VectorFormat format, StructType output, int idOrdinal, DataType idType, String timeZone,
                    Commit commit) {
        this.format = format;
        this.output = output;
        this.idOrdinal = idOrdinal;
        this.idType = idType;
        this.timeZone = timeZone;
        this.commit = commit;
    }

    @Override
    public Iterator<Object> apply(Iterator<PartitionScorer.Scored> scored) throws Exception {
        TaskContext task = TaskContext.get();
        long[] counts = SplitRowCounter.track();
        Iterator<PartitionScorer.Scored> batches = nonEmpty(scored);
        Attempt attempt = commit.setUp(task, !batches.hasNext());
        try {
            if (attempt.file != null) {
                try (OutputVectors vectors = new OutputVectors(output, idOrdinal, idType, timeZone);
                     VectorFormat.Writer out = format.open(attempt.file, vectors.root(), attempt.context)) {
                    while (batches.hasNext()) {
                        VectorSchemaRoot batch = vectors.fill(batches.next());
                        out.write(batch);
                        count(batch, counts);
                    }
                }
            }
            return List.of(attempt.commit(counts[0])).iterator();
        } catch (Exception | Error e) {
            try {
                attempt.abort();
            } catch (Exception | Error aborting) {
                e.addSuppressed(aborting);
            }
            throw e;
        }
    }

    /** Rows, error rows and tokens, as {@link SplitRowCounter} counts the row writer's rows. */
    private static void count(VectorSchemaRoot batch, long[] counts) {
        int rows = batch.getRowCount();
        IntVector numTokens = (IntVector) batch.getVector(ScoreColumns.NUM_TOKENS);
        FieldVector error = batch.getVector(ScoreColumns.ERROR);
        counts[0] += rows;
        for (int i = 0; i < rows; i++) {
            if (!error.isNull(i)) {
                counts[1]++;
            }
            counts[2] += numTokens.get(i);
        }
    }

    /** The batches with at least one row (a partition whose batches are all empty writes as an empty one). */
    private static Iterator<PartitionScorer.Scored> nonEmpty(Iterator<PartitionScorer.Scored> scored) {
        return new Iterator<>() {
            private PartitionScorer.Scored next;

            @Override
            public boolean hasNext() {
                while (next == null && scored.hasNext()) {
                    PartitionScorer.Scored s = scored.next();
                    next = s.numRows() > 0 ? s : null;
                }
                return next != null;
            }

            @Override
            public PartitionScorer.Scored next() {
                if (!hasNext()) {
                    throw new NoSuchElementException();
                }
                PartitionScorer.Scored s = next;
                next = null;
                return s;
            }
        };
    }

    /** How a write's task attempts get their file and commit it. */
    interface Commit extends Serializable {
        /** Sets up this task attempt; {@code empty}: its partition has no rows. */
        Attempt setUp(TaskContext task, boolean empty) throws IOException;
    }

    /** One task attempt of a write: its file (null where it writes none) and the Hadoop task context of its writer. */
    abstract static class Attempt {
        final Path file;
        final TaskAttemptContext context;

        Attempt(Path file, TaskAttemptContext context) {
            this.file = file;
            this.context = context;
        }

        /** Commits the attempt (its file is closed); the message the driver's job commit takes. */
        abstract Object commit(long rows) throws IOException;

        /** Deletes what the attempt wrote. */
        abstract void abort() throws IOException;
    }

    /**
     * Spark's file commit protocol (Parquet, JSON; the resumable output's {@link SplitCommitProtocol}), driven the way
     * Spark's FileFormatWriter drives it: the same Hadoop job and task attempt ids, file names
     * ({@code part-P-JOB-c000.EXT}), one file for partition 0 even when empty and none for other empty partitions,
     * and task commits asked of Spark's output commit coordinator (one attempt per partition).
     */
    record HadoopCommit(FileCommitProtocol committer, OutputWriterFactory files, String jobTrackerId,
                        SerializableConfiguration conf) implements Commit {
        @Override
        public Attempt setUp(TaskContext task, boolean empty) {
            JobID job = SparkHadoopWriterUtils.createJobID(jobTrackerId, task.stageId());
            TaskAttemptID attemptId = new TaskAttemptID(new TaskID(job, TaskType.MAP, task.partitionId()),
                    (int) task.taskAttemptId() & Integer.MAX_VALUE);
            Configuration c = new Configuration(conf.value());
            c.set("mapreduce.job.id", job.toString());
            c.set("mapreduce.task.id", attemptId.getTaskID().toString());
            c.set("mapreduce.task.attempt.id", attemptId.toString());
            c.setBoolean("mapreduce.task.ismap", true);
            c.setInt("mapreduce.task.partition", 0);
            TaskAttemptContext context = new TaskAttemptContextImpl(c, attemptId);
            committer.setupTask(context);
            Path file = empty && task.partitionId() != 0 ? null : new Path(committer.newTaskTempFile(context,
                    Option.empty(), new FileNameSpec("", "-c000" + files.getFileExtension(context))));
            return new Attempt(file, context) {
                @Override
                Object commit(long rows) {
                    return committer.commitTask(context);
                }

                @Override
                void abort() {
                    committer.abortTask(context);
                }
            };
        }
    }

    /** arrow-io's commit of an Arrow output folder ({@link ArrowFileCommit}): every task writes a file. */
    record ArrowCommit(ArrowFileCommit files, SerializableConfiguration conf) implements Commit {
        @Override
        public Attempt setUp(TaskContext task, boolean empty) {
            Path file = new Path(files.temporaryFile(task.partitionId(), task.taskAttemptId()));
            TaskAttemptContext context = new TaskAttemptContextImpl(conf.value(), new TaskAttemptID());
            return new Attempt(file, context) {
                @Override
                Object commit(long rows) {
                    return new ArrowCommitMessage(file.toString(), files.finalName(task.partitionId()), rows);
                }

                @Override
                void abort() throws IOException {
                    file.getFileSystem(conf.value()).delete(file, false);
                }
            };
        }
    }
}
