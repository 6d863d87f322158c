package io.moescore.arrow.spark;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Arrays;

import org.apache.hadoop.conf.Configuration;
import org.apache.spark.sql.connector.write.BatchWrite;
import org.apache.spark.sql.connector.write.DataWriterFactory;
import org.apache.spark.sql.connector.write.PhysicalWriteInfo;
import org.apache.spark.sql.connector.write.Write;
import org.apache.spark.sql.connector.write.WriterCommitMessage;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.util.SerializableConfiguration;

/**
 * One write of a DataFrame as Arrow IPC files, through Spark's commit protocol and {@link ArrowFileCommit}'s files:
 * each task writes its file under {@code DIR/_temporary/QUERY}, the job commit moves the committed tasks' files
 * into {@code DIR} (with truncate, SaveMode.Overwrite, after deleting the Arrow files there).
 */
final class ArrowBatchWrite implements Write, BatchWrite {
    private final ArrowFileCommit files;
    private final StructType schema;
    private final Configuration hadoopConf;
    private final String timeZone;
    private final int maxRecordsPerBatch;

    ArrowBatchWrite(String outputDir, String queryId, StructType schema, boolean truncate, Configuration hadoopConf,
                    String timeZone, int maxRecordsPerBatch) {
        this.files = new ArrowFileCommit(outputDir, queryId, truncate);
        this.schema = schema;
        this.hadoopConf = hadoopConf;
        this.timeZone = timeZone;
        this.maxRecordsPerBatch = maxRecordsPerBatch;
    }

    @Override
    public String description() {
        return "ArrowBatchWrite " + files.outputDir() + (files.truncate() ? " (overwrite)" : " (append)");
    }

    @Override
    public BatchWrite toBatch() {
        return this;
    }

    @Override
    public DataWriterFactory createBatchWriterFactory(PhysicalWriteInfo info) {
        return new ArrowDataWriterFactory(files, schema, timeZone, maxRecordsPerBatch,
                new SerializableConfiguration(hadoopConf));
    }

    @Override
    public void commit(WriterCommitMessage[] messages) {
        try {
            files.commit(Arrays.stream(messages).map(m -> (ArrowCommitMessage) m).toList(), hadoopConf);
        } catch (IOException e) {
            throw new UncheckedIOException("arrow data source: committing the write to " + files.outputDir()
                    + " failed: " + e.getMessage(), e);
        }
    }

    /** Deletes every task's file: none was moved, since moving happens only in {@link #commit}. */
    @Override
    public void abort(WriterCommitMessage[] messages) {
        try {
            files.abort(hadoopConf);
        } catch (IOException e) {
            throw new UncheckedIOException("arrow data source: cleaning up the aborted write to " + files.outputDir()
                    + " failed: " + e.getMessage(), e);
        }
    }
}
