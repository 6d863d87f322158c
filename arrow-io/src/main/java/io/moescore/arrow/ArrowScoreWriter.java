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
 * {@code write}. Owns its output and its root (except a root handed to {@link #over}, which stays its caller's);
 * not the allocator. {@link #close()} ends the file.
 */
public final class ArrowScoreWriter implements AutoCloseable {
    private final VectorSchemaRoot root;
    private final boolean ownsRoot;
    private final ArrowWriter writer;

    private ArrowScoreWriter(VectorSchemaRoot root, boolean ownsRoot, ArrowWriter writer) {
        this.root = root;
        this.ownsRoot = ownsRoot;
        this.writer = writer;
    }

    /**
     * Writes whatever {@code root} holds at each {@link #writeBatch()} to {@code out}, which this writer owns from now
     * on (closed by {@link #close()}, or on failure); the root stays its caller's, who fills it (the Spark job's score
     * vectors, written as they are: no copy of any value). The schema is the root's.
     */
    public static ArrowScoreWriter over(VectorSchemaRoot root, WritableByteChannel out, IpcFormat format)
            throws IOException {
        ArrowWriter writer = null;
        try {
            writer = format.newWriter(root, out);
            writer.start();
            return new ArrowScoreWriter(root, false, writer);
        } catch (IOException | RuntimeException e) {
            closeQuietly(writer == null ? out : writer, e);
            throw e;
        }
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
            return new ArrowScoreWriter(root, true, writer);
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

    /** Writes what the root holds now as one record batch. */
    public void writeBatch() throws IOException {
        writer.writeBatch();
    }

    /** The root each write fills; its content is the last batch written. */
    public VectorSchemaRoot root() {
        return root;
    }

    /** Ends the file and closes the output (and the root, where this writer owns it); a second failure is added. */
    @Override
    public void close() {
        RuntimeException failure = null;
        try {
            writer.close();
        } catch (RuntimeException e) {
            failure = e;
        }
        if (ownsRoot) {
            try {
                root.close();
            } catch (RuntimeException e) {
                if (failure == null) {
                    failure = e;
                } else {
                    failure.addSuppressed(e);
                }
            }
        }
        if (failure != null) {
            throw failure;
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
