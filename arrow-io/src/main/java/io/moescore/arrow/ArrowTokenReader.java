package io.moescore.arrow;

import java.io.IOException;
import java.nio.channels.SeekableByteChannel;
import java.nio.file.Path;

import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.vector.FieldVector;
import org.apache.arrow.vector.VarCharVector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.complex.ListVector;

import io.moescore.batch.TokenBatch;

/**
 * Token batches from an Arrow IPC file ({@code .arrow}) or stream ({@code .arrows}), one record batch at a
 * time, with the schema checked at open ({@link ArrowSchemas#validateTokens}). Vectors and the
 * {@link #tokenBatch()} view are valid until the next {@link #loadNextBatch()} or {@link #close()}.
 * Owns the file and its vectors; not the allocator.
 *
 * <pre>{@code
 * try (BufferAllocator allocator = root.newChildAllocator("tokens", 0, Long.MAX_VALUE);
 *      ArrowTokenReader in = ArrowTokenReader.open(path, allocator)) {
 *     while (in.loadNextBatch()) {
 *         ScoreBatch scores = engine.score(in.tokenBatch(), options);
 *         out.write(in.ids(), 0, scores);
 *     }
 * }
 * }</pre>
 */
public final class ArrowTokenReader implements AutoCloseable {
    private final ArrowIpcReader in;
    private final IdType idType;

    private ArrowTokenReader(ArrowIpcReader in, IdType idType) {
        this.in = in;
        this.idType = idType;
    }

    /**
     * Opens a local file of either IPC format.
     *
     * @throws ArrowFileException when it is not readable Arrow, naming the file
     * @throws ArrowSchemaException when a column is missing or has the wrong type, naming the file and column
     */
    public static ArrowTokenReader open(Path file, BufferAllocator allocator) throws IOException {
        return validated(ArrowIpcReader.open(file, allocator));
    }

    /** Reads {@code channel}, which this reader owns from now on; {@code source} names it in errors. */
    public static ArrowTokenReader open(SeekableByteChannel channel, String source, BufferAllocator allocator)
            throws IOException {
        return validated(ArrowIpcReader.open(channel, source, allocator));
    }

    private static ArrowTokenReader validated(ArrowIpcReader in) throws IOException {
        try {
            return new ArrowTokenReader(in, ArrowSchemas.validateTokens(in.schema(), in.source()));
        } catch (RuntimeException e) {
            try {
                in.close();
            } catch (IOException | RuntimeException closing) {
                e.addSuppressed(closing);
            }
            throw e;
        }
    }

    public String source() {
        return in.source();
    }

    public IpcFormat format() {
        return in.format();
    }

    public IdType idType() {
        return idType;
    }

    /** Loads the next record batch; false at the end. */
    public boolean loadNextBatch() throws ArrowFileException {
        return in.loadNextBatch();
    }

    /** Rows in the current batch. */
    public int rowCount() {
        return in.root().getRowCount();
    }

    /** The whole current batch, every column of the file included. */
    public VectorSchemaRoot root() {
        return in.root();
    }

    /** The {@code id} column: a BigIntVector or a VarCharVector, as {@link #idType()} says. */
    public FieldVector ids() {
        return in.root().getVector(Columns.ID);
    }

    public ListVector tokens() {
        return (ListVector) in.root().getVector(Columns.TOKENS);
    }

    /** The {@code text} column, or null when the file has none. */
    public VarCharVector text() {
        return (VarCharVector) in.root().getVector(Columns.TEXT);
    }

    /**
     * The current batch's tokens, zero-copy ({@link ArrowTokenBatches}): null rows are empty sequences.
     *
     * @throws IllegalArgumentException naming the file and row, for a null token id or corrupt offsets
     */
    public TokenBatch tokenBatch() {
        try {
            return ArrowTokenBatches.view(tokens(), 0, rowCount());
        } catch (IllegalArgumentException | IndexOutOfBoundsException e) {
            throw new IllegalArgumentException(source() + ": " + e.getMessage(), e);
        }
    }

    @Override
    public void close() throws IOException {
        in.close();
    }
}
