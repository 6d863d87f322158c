package io.moescore.arrow.spark;

import java.io.IOException;
import java.nio.channels.Channels;

import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.connector.write.DataWriter;
import org.apache.spark.sql.connector.write.WriterCommitMessage;
import org.apache.spark.sql.execution.arrow.ArrowWriter;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.util.ArrowUtils;

import io.moescore.arrow.IpcFormat;

/**
 * One task's rows into one Arrow IPC file under a temporary name, converted by Spark's own
 * {@link ArrowWriter} (InternalRow to Arrow vectors), a record batch every {@code maxRecordsPerBatch} rows.
 * Every task writes a file, an empty partition too (schema, no batches). Owns a child of Spark's Arrow root
 * allocator, closed last.
 */
final class ArrowDataWriter implements DataWriter<InternalRow> {
    private final BufferAllocator allocator;
    private final VectorSchemaRoot root;
    private final ArrowWriter rowWriter;
    private final org.apache.arrow.vector.ipc.ArrowWriter fileWriter;
    private final FileSystem fs;
    private final Path temporaryFile;
    private final String finalName;
    private final int maxRecordsPerBatch;
    private int rowsInBatch;
    private long rows;
    private boolean closed;

    private ArrowDataWriter(BufferAllocator allocator, VectorSchemaRoot root, ArrowWriter rowWriter,
                            org.apache.arrow.vector.ipc.ArrowWriter fileWriter, FileSystem fs, Path temporaryFile,
                            String finalName, int maxRecordsPerBatch) {
        this.allocator = allocator;
        this.root = root;
        this.rowWriter = rowWriter;
        this.fileWriter = fileWriter;
        this.fs = fs;
        this.temporaryFile = temporaryFile;
        this.finalName = finalName;
        this.maxRecordsPerBatch = maxRecordsPerBatch;
    }

    static ArrowDataWriter open(String temporaryFile, String finalName, StructType schema, String timeZone,
                                int maxRecordsPerBatch, Configuration conf) throws IOException {
        Path path = new Path(temporaryFile);
        FileSystem fs = path.getFileSystem(conf);
        BufferAllocator allocator = ArrowUtils.rootAllocator().newChildAllocator("moescore arrow write " + path, 0,
                Long.MAX_VALUE);
        VectorSchemaRoot root = null;
        FSDataOutputStream out = null;
        try {
            root = VectorSchemaRoot.create(ArrowUtils.toArrowSchema(schema, timeZone, true, false), allocator);
            ArrowWriter rowWriter = ArrowWriter.create(root);
            out = fs.create(path, false);
            org.apache.arrow.vector.ipc.ArrowWriter fileWriter = IpcFormat.FILE.newWriter(root,
                    Channels.newChannel(out));
            fileWriter.start();
            return new ArrowDataWriter(allocator, root, rowWriter, fileWriter, fs, path, finalName,
                    maxRecordsPerBatch);
        } catch (IOException | RuntimeException e) {
            try {
                if (out != null) {
                    out.close();
                    fs.delete(path, false);
                }
                if (root != null) {
                    root.close();
                }
                allocator.close();
            } catch (IOException | RuntimeException closing) {
                e.addSuppressed(closing);
            }
            throw e;
        }
    }

    @Override
    public void write(InternalRow row) throws IOException {
        rowWriter.write(row);
        rows++;
        if (++rowsInBatch == maxRecordsPerBatch) {
            flushBatch();
        }
    }

    private void flushBatch() throws IOException {
        rowWriter.finish();
        fileWriter.writeBatch();
        rowWriter.reset();
        rowsInBatch = 0;
    }

    /** Ends the file under its temporary name; the job commit moves it (ArrowBatchWrite). */
    @Override
    public WriterCommitMessage commit() throws IOException {
        if (rowsInBatch > 0) {
            flushBatch();
        }
        fileWriter.end();
        close();
        return new ArrowCommitMessage(temporaryFile.toString(), finalName, rows);
    }

    @Override
    public void abort() throws IOException {
        try {
            close();
        } finally {
            fs.delete(temporaryFile, false);
        }
    }

    @Override
    public void close() throws IOException {
        if (closed) {
            return;
        }
        closed = true;
        try {
            fileWriter.close();
        } finally {
            try {
                root.close();
            } finally {
                allocator.close();
            }
        }
    }
}
