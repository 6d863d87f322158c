package io.moescore.spark;

import io.moescore.arrow.spark.ArrowCommitMessage;
import io.moescore.arrow.spark.ArrowFileCommit;
import io.moescore.batch.ScoreColumns;
import java.io.IOException;
import java.io.Serializable;
import java.util.ArrayList;
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
 * then commits the attempt through the write's commit protocol ({@link Commit}) and returns its commit messages. With
 * {@code maxRecordsPerFile} N above 0 the task rolls over to its next file after N rows, as Spark's row writer does:
 * the first file is opened at the start (an empty partition writes one where the protocol says), each further one
 * when a row is left over, numbered {@code -c000}, {@code -c001}, ...; a batch that crosses a file
 * boundary is filled a file's share at a time. A failure deletes what the attempt wrote, every file of it (the
 * protocol's task abort), and fails the task. Counts rows, error rows and tokens for a resumable output's split
 * commit ({@link SplitRowCounter}).
 */
final class VectorWriteTask implements DatasetScorer.ScoredFunction<Object> {
    private final VectorFormat format;
    private final StructType output;
    private final int idOrdinal;
    private final DataType idType;
    private final String timeZone;
    private final long maxRecordsPerFile;
    private final Commit commit;

    /** @param maxRecordsPerFile rows per file; 0 or less: unlimited ({@link VectorOutput#maxRecordsPerFile}) */
    VectorWriteTask(VectorFormat format, StructType output, int idOrdinal, DataType idType, String timeZone,
                    long maxRecordsPerFile, Commit commit) {
        this.format = format;
        this.output = output;
        this.idOrdinal = idOrdinal;
        this.idType = idType;
        this.timeZone = timeZone;
        this.maxRecordsPerFile = maxRecordsPerFile;
        this.commit = commit;
    }

    @Override
    public Iterator<Object> apply(Iterator<PartitionScorer.Scored> scored) throws Exception {
        TaskContext task = TaskContext.get();
        long[] counts = SplitRowCounter.track();
        Iterator<PartitionScorer.Scored> batches = nonEmpty(scored);
        Attempt attempt = commit.setUp(task);
        try {
            if (batches.hasNext() || commit.writesEmpty(task.partitionId())) {
                write(batches, attempt, counts);
            }
            return attempt.commit().iterator();
        } catch (Exception | Error e) {
            try {
                attempt.abort();
            } catch (Exception | Error aborting) {
                e.addSuppressed(aborting);
            }
            throw e;
        }
    }

    /** Writes the batches into the attempt's files, rolling over to the next file after maxRecordsPerFile rows. */
    private void write(Iterator<PartitionScorer.Scored> batches, Attempt attempt, long[] counts) throws IOException {
        try (OutputVectors vectors = new OutputVectors(output, idOrdinal, idType, timeZone)) {
            VectorFormat.Writer out = format.open(attempt.newFile(), vectors.root(), attempt.context);
            try {
                long inFile = 0;
                while (batches.hasNext()) {
                    PartitionScorer.Scored scored = batches.next();
                    for (int from = 0, n = scored.numRows(); from < n; ) {
                        if (maxRecordsPerFile > 0 && inFile == maxRecordsPerFile) {
                            VectorFormat.Writer full = out;
                            out = null;
                            full.close();
                            out = format.open(attempt.newFile(), vectors.root(), attempt.context);
                            inFile = 0;
                        }
                        int to = maxRecordsPerFile > 0 ? (int) Math.min(n, from + maxRecordsPerFile - inFile) : n;
                        VectorSchemaRoot batch = vectors.fill(scored, from, to);
                        out.write(batch);
                        count(batch, counts);
                        attempt.wrote(to - from);
                        inFile += to - from;
                        from = to;
                    }
                }
            } finally {
                if (out != null) {
                    out.close();
                }
            }
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

    /** How a write's task attempts get their files and commit them. */
    interface Commit extends Serializable {
        /** Sets up this task attempt. */
        Attempt setUp(TaskContext task) throws IOException;

        /** Whether partition {@code partitionId} writes a file (its schema, no rows) when it has no rows. */
        boolean writesEmpty(int partitionId);
    }

    /** One task attempt of a write: its files (numbered from 0, in the order written) and its Hadoop task context. */
    abstract static class Attempt {
        final TaskAttemptContext context;
        private final List<Long> rows = new ArrayList<>();

        Attempt(TaskAttemptContext context) {
            this.context = context;
        }

        /** Where the attempt writes its next file (number 0 first, named {@code -c000}, then 1, ...). */
        final Path newFile() {
            rows.add(0L);
            return file(rows.size() - 1);
        }

        /** Counts {@code n} rows written into the newest file. */
        final void wrote(long n) {
            rows.set(rows.size() - 1, rows.get(rows.size() - 1) + n);
        }

        /** The rows written into each file so far, in file order. */
        final List<Long> rowsPerFile() {
            return rows;
        }

        /** File number {@code n} of this attempt. */
        abstract Path file(int n);

        /** Commits the attempt (its files are closed); the messages the driver's job commit takes. */
        abstract List<Object> commit() throws IOException;

        /** Deletes what the attempt wrote. */
        abstract void abort() throws IOException;
    }

    /**
     * Spark's file commit protocol (Parquet, JSON; the resumable output's {@link SplitCommitProtocol}), driven the way
     * Spark's FileFormatWriter drives it: the same Hadoop job and task attempt ids, file names
     * ({@code part-P-JOB-c000.EXT}, then {@code -c001}, ... after each maxRecordsPerFile rows), and task commits
     * asked of Spark's output commit coordinator (one attempt per partition; one message for all its files); one file
     * for partition 0 even when empty and none for other empty partitions. The protocol's task abort deletes every
     * file of the attempt (its task folder).
     */
    record HadoopCommit(FileCommitProtocol committer, OutputWriterFactory files, String jobTrackerId,
                        SerializableConfiguration conf) implements Commit {
        @Override
        public boolean writesEmpty(int partitionId) {
            return partitionId == 0;
        }

        @Override
        public Attempt setUp(TaskContext task) {
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
            return new Attempt(context) {
                @Override
                Path file(int n) {
                    return new Path(committer.newTaskTempFile(context, Option.empty(),
                            new FileNameSpec("", ArrowFileCommit.counter(n) + files.getFileExtension(context))));
                }

                @Override
                List<Object> commit() {
                    return List.of(committer.commitTask(context));
                }

                @Override
                void abort() {
                    committer.abortTask(context);
                }
            };
        }
    }

    /**
     * arrow-io's commit of an Arrow output folder ({@link ArrowFileCommit}): files named as Spark's row writer names
     * its ({@code part-P-QUERY-c000.arrow}, ...), one commit message per file; every task writes a file, as the
     * arrow source's; the task abort deletes every one.
     */
    record ArrowCommit(ArrowFileCommit files, SerializableConfiguration conf) implements Commit {
        @Override
        public boolean writesEmpty(int partitionId) {
            return true;
        }

        @Override
        public Attempt setUp(TaskContext task) {
            TaskAttemptContext context = new TaskAttemptContextImpl(conf.value(), new TaskAttemptID());
            return new Attempt(context) {
                @Override
                Path file(int n) {
                    return new Path(files.temporaryFile(task.partitionId(), task.taskAttemptId(), n));
                }

                @Override
                List<Object> commit() {
                    List<Object> messages = new ArrayList<>();
                    for (int n = 0; n < rowsPerFile().size(); n++) {
                        messages.add(new ArrowCommitMessage(file(n).toString(), files.finalName(task.partitionId(), n),
                                rowsPerFile().get(n)));
                    }
                    return messages;
                }

                @Override
                void abort() throws IOException {
                    IOException failure = null;
                    for (int n = 0; n < rowsPerFile().size(); n++) {
                        Path file = file(n);
                        try {
                            file.getFileSystem(conf.value()).delete(file, false);
                        } catch (IOException e) {
                            if (failure == null) {
                                failure = new IOException("cannot delete " + file + " of a failed attempt", e);
                            } else {
                                failure.addSuppressed(new IOException("cannot delete " + file, e));
                            }
                        }
                    }
                    if (failure != null) {
                        throw failure;
                    }
                }
            };
        }
    }
}
