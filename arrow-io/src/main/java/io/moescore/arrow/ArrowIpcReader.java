package io.moescore.arrow;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.SeekableByteChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

import org.apache.arrow.compression.CommonsCompressionFactory;
import org.apache.arrow.memory.ArrowBuf;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.vector.BaseVariableWidthVector;
import org.apache.arrow.vector.BaseVariableWidthViewVector;
import org.apache.arrow.vector.FieldVector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.complex.ListVector;
import org.apache.arrow.vector.ipc.ArrowFileReader;
import org.apache.arrow.vector.ipc.ArrowReader;
import org.apache.arrow.vector.ipc.ArrowStreamReader;
import org.apache.arrow.vector.types.pojo.Schema;
import org.apache.arrow.vector.util.ValueVectorUtility;

/**
 * An Arrow IPC file or stream read batch by batch, of either format (told by its first bytes), whose every
 * failure is an {@link ArrowFileException} naming it. Every message's metadata is checked at open
 * ({@link IpcMessageCheck}), and each batch's buffers and offsets as it is loaded. The root is reloaded in
 * place by each {@link #loadNextBatch()}: what it held before is gone (move it out with a TransferPair to keep
 * it). Owns its channel and its root; not the allocator.
 */
public final class ArrowIpcReader implements AutoCloseable {
    private final String source;
    private final IpcFormat format;
    private final ArrowReader reader;
    private final VectorSchemaRoot raw;
    private final NormalizedRoot normalized;
    private long batchesRead;

    private ArrowIpcReader(String source, IpcFormat format, ArrowReader reader, VectorSchemaRoot raw,
                           NormalizedRoot normalized) {
        this.source = source;
        this.format = format;
        this.reader = reader;
        this.raw = raw;
        this.normalized = normalized;
    }

    /** Opens a local file. */
    public static ArrowIpcReader open(Path file, BufferAllocator allocator) throws IOException {
        return open(FileChannel.open(file, StandardOpenOption.READ), file.toString(), allocator);
    }

    /**
     * Reads {@code channel}, which this reader owns from now on, even when opening fails.
     *
     * @param source the name errors give (a path or URI)
     */
    public static ArrowIpcReader open(SeekableByteChannel channel, String source, BufferAllocator allocator)
            throws IOException {
        ArrowReader reader = null;
        try {
            IpcFormat format = IpcFormat.detect(channel, source);
            IpcMessageCheck.check(channel, format, source);
            reader = format == IpcFormat.FILE
                    ? new ArrowFileReader(channel, allocator, CommonsCompressionFactory.INSTANCE)
                    : new ArrowStreamReader(channel, allocator, CommonsCompressionFactory.INSTANCE);
            VectorSchemaRoot raw = readSchema(reader, source);
            NormalizedRoot normalized = NormalizedRoot.create(raw.getSchema(), reader, allocator, source);
            return new ArrowIpcReader(source, format, reader, raw, normalized);
        } catch (IOException | RuntimeException e) {
            try {
                if (reader != null) {
                    reader.close();
                } else {
                    channel.close();
                }
            } catch (IOException | RuntimeException closing) {
                e.addSuppressed(closing);
            }
            throw e;
        }
    }

    private static VectorSchemaRoot readSchema(ArrowReader reader, String source) throws ArrowFileException {
        try {
            return reader.getVectorSchemaRoot();
        } catch (IOException | RuntimeException e) {
            throw new ArrowFileException(source, "not a readable Arrow IPC file (truncated or corrupt)", e);
        }
    }

    public String source() {
        return source;
    }

    public IpcFormat format() {
        return format;
    }

    /** The columns in the plain types {@link NormalizedRoot} reads them as (large lists as lists, ...). */
    public Schema schema() {
        return normalized.schema();
    }

    /** The columns as the file declares them (dictionary-encoded columns with their index type). */
    public Schema fileSchema() {
        return raw.getSchema();
    }

    /** The batch last loaded, in the plain types of {@link #schema()}; reloaded in place by {@link #loadNextBatch()}. */
    public VectorSchemaRoot root() {
        return normalized.root();
    }

    /** Loads the next record batch into {@link #root()}; false at the end. */
    public boolean loadNextBatch() throws ArrowFileException {
        try {
            if (!reader.loadNextBatch()) {
                return false;
            }
            // Buffer sizes and offsets, so that corrupt input fails here rather than deep in whoever reads it.
            // (Not validateFull: it also decodes every string as UTF-8, copying each one.)
            for (FieldVector vector : raw.getFieldVectors()) {
                if (!(vector instanceof BaseVariableWidthViewVector)) { // Arrow Java cannot validate views: their
                    ValueVectorUtility.validate(vector);                // utf8 copies are, below
                }
            }
            normalized.load(raw, reader);
            VectorSchemaRoot root = normalized.root();
            if (normalized.rewrites()) {
                ValueVectorUtility.validate(root);
            }
            for (FieldVector vector : root.getFieldVectors()) {
                checkOffsets(vector);
            }
            batchesRead++;
            return true;
        } catch (IOException | RuntimeException e) {
            throw new ArrowFileException(source, "cannot read record batch " + batchesRead
                    + " (truncated or corrupt)", e);
        }
    }

    /** Offsets that start at 0 or more and never decrease, in {@code vector} and its children. */
    private static void checkOffsets(FieldVector vector) {
        if (vector instanceof BaseVariableWidthVector || vector instanceof ListVector) {
            ArrowBuf offsets = vector.getOffsetBuffer();
            int previous = vector.getValueCount() == 0 ? 0 : offsets.getInt(0);
            for (int i = 1; i <= vector.getValueCount() && previous >= 0; i++) {
                int next = offsets.getInt((long) i * Integer.BYTES);
                previous = next >= previous ? next : -1;
            }
            if (previous < 0) {
                throw new IllegalStateException("column " + vector.getName() + " has corrupt offsets");
            }
        }
        for (FieldVector child : vector.getChildrenFromFields()) {
            checkOffsets(child);
        }
    }

    @Override
    public void close() throws IOException {
        try {
            normalized.close();
        } finally {
            reader.close();
        }
    }
}
