package io.moescore.arrow;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.vector.FieldVector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.ipc.ArrowWriter;
import org.apache.arrow.vector.types.pojo.Schema;

import io.moescore.batch.ScoreBatch;

/**
 * Writes results ({@link ArrowSchemas#results}) to an Arrow IPC file or stream, one record batch per
 * {@code write}. Owns its output and its root; not the allocator. {@link #close()} ends the file.
 */
public final class ArrowScoreWriter implements AutoCloseable {
    private final VectorSchemaRoot root;
    private final ArrowWriter writer;

    private ArrowScoreWriter(VectorSchemaRoot root, ArrowWriter writer) {
        this.root = root;
        this.writer = writer;
    }

    /** Creates (or replaces) {@code file}, in the STREAM format if its name ends in {@code .arrows}, else FILE. */
    public static ArrowScoreWriter open(Path file, Schema resultSchema, BufferAllocator allocator)
            throws IOException {
        FileChannel out = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING);
        return open(out, IpcFormat.forFileName(file.getFileName().toString()), resultSchema, allocator);
    }

    /** Writes to {@code out}, which this writer owns from now on (closed by {@link #close()}, or on failure). */
    public static ArrowScoreWriter open(WritableByteChannel out, IpcFormat format, Schema resultSchema,
                                        BufferAllocator allocator) throws IOException {
        VectorSchemaRoot root = null;
        ArrowWriter writer = null;
        try {
            root = VectorSchemaRoot.create(resultSchema, allocator);
            writer = format.newWriter(root, out);
            writer.start();
            return new ArrowScoreWriter(root, writer);
        } catch (IOException | RuntimeException e) {
            closeQuietly(writer == null ? out : writer, e);
            closeQuietly(root, e);
            throw e;
        }
    }

    /** Writes one batch: ids from {@code ids[fromRow ..]} (the input's id column), scores in their order. */
    public void write(FieldVector ids, int fromRow, ScoreBatch scores) throws IOException {
        ScoreVectors.fill(root, ids, fromRow, scores);
        writer.writeBatch();
    }

    /** Writes one batch with int64 ids. */
    public void write(long[] ids, ScoreBatch scores) throws IOException {
        ScoreVectors.fill(root, ids, scores);
        writer.writeBatch();
    }

    /** Writes one batch with utf8 ids. */
    public void write(String[] ids, ScoreBatch scores) throws IOException {
        ScoreVectors.fill(root, ids, scores);
        writer.writeBatch();
    }

    /** The root each write fills; its content is the last batch written. */
    public VectorSchemaRoot root() {
        return root;
    }

    @Override
    public void close() {
        try {
            writer.close();
        } finally {
            root.close();
        }
    }

    private static void closeQuietly(AutoCloseable c, Exception failure) {
        if (c == null) {
            return;
        }
        try {
            c.close();
        } catch (Exception e) {
            failure.addSuppressed(e);
        }
    }
}
