package io.moescore.arrow.spark;

import java.io.IOException;
import java.io.UncheckedIOException;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.sql.connector.write.BatchWrite;
import org.apache.spark.sql.connector.write.DataWriterFactory;
import org.apache.spark.sql.connector.write.PhysicalWriteInfo;
import org.apache.spark.sql.connector.write.Write;
import org.apache.spark.sql.connector.write.WriterCommitMessage;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.util.SerializableConfiguration;

import io.moescore.arrow.IpcFormat;

/**
 * One write of a DataFrame as Arrow IPC files, through Spark's commit protocol. Each task writes
 * {@code DIR/_temporary/QUERY/part-P-TASK.arrow}; committing the job moves each committed task's file to
 * {@code DIR/part-P-QUERY.arrow} and deletes {@code _temporary/QUERY}, so readers see no file of a job that
 * failed or was aborted. With truncate (SaveMode.Overwrite) the {@code .arrow}/{@code .arrows} files already in
 * {@code DIR} are deleted at job commit, just before the moves; other files are left alone. The moves are not
 * atomic as a whole: a job commit that fails half-way leaves the files already moved.
 */
final class ArrowBatchWrite implements Write, BatchWrite {
    private static final String TEMPORARY = "_temporary";

    private final String outputDir;
    private final String queryId;
    private final StructType schema;
    private final boolean truncate;
    private final Configuration hadoopConf;
    private final String timeZone;
    private final int maxRecordsPerBatch;

    ArrowBatchWrite(String outputDir, String queryId, StructType schema, boolean truncate, Configuration hadoopConf,
                    String timeZone, int maxRecordsPerBatch) {
        this.outputDir = outputDir;
        this.queryId = queryId;
        this.schema = schema;
        this.truncate = truncate;
        this.hadoopConf = hadoopConf;
        this.timeZone = timeZone;
        this.maxRecordsPerBatch = maxRecordsPerBatch;
    }

    @Override
    public String description() {
        return "ArrowBatchWrite " + outputDir + (truncate ? " (overwrite)" : " (append)");
    }

    @Override
    public BatchWrite toBatch() {
        return this;
    }

    @Override
    public DataWriterFactory createBatchWriterFactory(PhysicalWriteInfo info) {
        return new ArrowDataWriterFactory(jobTemporaryDir().toString(), queryId, schema, timeZone,
                maxRecordsPerBatch, new SerializableConfiguration(hadoopConf));
    }

    @Override
    public void commit(WriterCommitMessage[] messages) {
        Path dir = new Path(outputDir);
        try {
            FileSystem fs = dir.getFileSystem(hadoopConf);
            fs.mkdirs(dir);
            if (truncate) {
                for (FileStatus old : fs.listStatus(dir)) {
                    if (old.isFile() && IpcFormat.isArrowFileName(old.getPath().getName())) {
                        fs.delete(old.getPath(), false);
                    }
                }
            }
            for (WriterCommitMessage m : messages) {
                ArrowCommitMessage task = (ArrowCommitMessage) m;
                Path from = new Path(task.temporaryFile());
                Path to = new Path(dir, task.finalName());
                if (!fs.rename(from, to)) {
                    throw new IOException("arrow data source: could not move " + from + " to " + to);
                }
            }
            deleteJobTemporaryDir(fs);
        } catch (IOException e) {
            throw new UncheckedIOException("arrow data source: committing the write to " + outputDir + " failed: "
                    + e.getMessage(), e);
        }
    }

    /** Deletes every task's file: none was moved, since moving happens only in {@link #commit}. */
    @Override
    public void abort(WriterCommitMessage[] messages) {
        try {
            deleteJobTemporaryDir(new Path(outputDir).getFileSystem(hadoopConf));
        } catch (IOException e) {
            throw new UncheckedIOException("arrow data source: cleaning up the aborted write to " + outputDir
                    + " failed: " + e.getMessage(), e);
        }
    }

    private Path jobTemporaryDir() {
        return new Path(new Path(outputDir, TEMPORARY), queryId);
    }

    private void deleteJobTemporaryDir(FileSystem fs) throws IOException {
        Path job = jobTemporaryDir();
        fs.delete(job, true);
        Path parent = job.getParent();
        if (fs.exists(parent) && fs.listStatus(parent).length == 0) {
            fs.delete(parent, false);
        }
    }
}
