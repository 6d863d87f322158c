package io.moescore.arrow;

import java.nio.ByteOrder;
import java.nio.IntBuffer;
import java.util.Objects;

import org.apache.arrow.memory.ArrowBuf;
import org.apache.arrow.vector.BigIntVector;
import org.apache.arrow.vector.IntVector;
import org.apache.arrow.vector.complex.ListVector;

import io.moescore.batch.TokenBatch;

/**
 * {@link TokenBatch} views of an Arrow {@code list<int32>} column, without copying tokens ({@code list<int64>}
 * columns are copied into int32 once).
 *
 * <p>The batch's token buffer is the list's int32 data buffer and its offsets are the list's offset buffer,
 * read in place (Arrow's offsets are absolute indices into the data, which is what TokenBatch wants). The view
 * is valid only while the vector keeps those buffers: not after it is cleared, closed, reallocated or reloaded
 * with a reader's next batch.
 *
 * <p>A null list entry is an empty sequence, which the engine reports as that row's error ("empty sequence").
 * Arrow lets a null entry still span child values; in that rare case the batch is built from a compacted copy
 * instead of a view. A null token id inside a list cannot be scored and is refused with an exception naming the
 * row.
 */
public final class ArrowTokenBatches {
    /** A TokenBatch addresses tokens with int indices: at most this many tokens fit in one view. */
    public static final int MAX_TOKENS = Integer.MAX_VALUE / Integer.BYTES;

    private ArrowTokenBatches() {
    }

    /** All rows of {@code tokens}. */
    public static TokenBatch view(ListVector tokens) {
        return view(tokens, 0, tokens.getValueCount());
    }

    /** Rows {@code fromRow .. fromRow + rowCount} of {@code tokens}, as sequences 0 .. rowCount-1. */
    public static TokenBatch view(ListVector tokens, int fromRow, int rowCount) {
        Objects.checkFromIndexSize(fromRow, rowCount, tokens.getValueCount());
        if (tokens.getDataVector() instanceof BigIntVector wide) {
            return narrowedCopy(tokens, wide, fromRow, rowCount);
        }
        if (!(tokens.getDataVector() instanceof IntVector data)) {
            throw new ArrowSchemaException("column " + tokens.getName() + " has type "
                    + ArrowSchemas.typeName(tokens.getField()) + ", expected " + ArrowSchemas.TOKEN_TYPES);
        }
        if (rowCount == 0) {
            return new TokenBatch(IntBuffer.allocate(0), IntBuffer.wrap(new int[] {0}), 0);
        }
        ArrowBuf offsetBuffer = tokens.getOffsetBuffer();
        int start = offset(offsetBuffer, fromRow);
        int end = offset(offsetBuffer, fromRow + rowCount);
        if (start < 0 || end < start) {
            throw new IllegalArgumentException("column " + tokens.getName() + ": corrupt offsets " + start + ", "
                    + end + " for rows " + fromRow + " to " + (fromRow + rowCount));
        }
        if (end > MAX_TOKENS) {
            throw new IllegalArgumentException("column " + tokens.getName() + ": rows up to " + (fromRow + rowCount)
                    + " span " + end + " tokens, more than one view holds (" + MAX_TOKENS + "); use fewer rows");
        }
        checkNoNullTokens(tokens, data, fromRow, rowCount);
        boolean nullsSpanValues = false;
        for (int row = fromRow; row < fromRow + rowCount && !nullsSpanValues; row++) {
            nullsSpanValues = tokens.isNull(row) && offset(offsetBuffer, row + 1) > offset(offsetBuffer, row);
        }
        if (nullsSpanValues) {
            return compactedCopy(tokens, data, fromRow, rowCount);
        }
        IntBuffer offsets = ints(offsetBuffer, (long) fromRow * Integer.BYTES, rowCount + 1);
        return new TokenBatch(ints(data.getDataBuffer(), 0, end), offsets, rowCount);
    }

    private static IntBuffer ints(ArrowBuf buffer, long byteOffset, int count) {
        if (count == 0) {
            return IntBuffer.allocate(0);
        }
        return buffer.nioBuffer(byteOffset, count * Integer.BYTES).order(ByteOrder.LITTLE_ENDIAN).asIntBuffer();
    }

    private static int offset(ArrowBuf offsets, int index) {
        return offsets.getInt((long) index * Integer.BYTES);
    }

    private static void checkNoNullTokens(ListVector tokens, IntVector data, int fromRow, int rowCount) {
        if (data.getNullCount() == 0) {
            return;
        }
        ArrowBuf offsets = tokens.getOffsetBuffer();
        for (int row = fromRow; row < fromRow + rowCount; row++) {
            if (tokens.isNull(row)) {
                continue;
            }
            for (int i = offset(offsets, row); i < offset(offsets, row + 1); i++) {
                if (data.isNull(i)) {
                    throw new IllegalArgumentException("column " + tokens.getName() + ", row " + row
                            + ": token " + (i - offset(offsets, row)) + " is null; token ids must not be null");
                }
            }
        }
    }

    /**
     * list&lt;int64&gt; rows copied into int32 (null entries empty); an id outside int32 or a null id is refused
     * naming the row and position.
     */
    private static TokenBatch narrowedCopy(ListVector tokens, BigIntVector data, int fromRow, int rowCount) {
        ArrowBuf offsetBuffer = tokens.getOffsetBuffer();
        int[] offsets = new int[rowCount + 1];
        long total = 0;
        for (int i = 0; i < rowCount; i++) {
            int row = fromRow + i;
            total += tokens.isNull(row) ? 0 : offset(offsetBuffer, row + 1) - offset(offsetBuffer, row);
            if (total > MAX_TOKENS) {
                throw new IllegalArgumentException("column " + tokens.getName() + ": rows up to " + row + " span "
                        + total + " tokens, more than one batch holds (" + MAX_TOKENS + "); use fewer rows");
            }
            offsets[i + 1] = (int) total;
        }
        int[] packed = new int[(int) total];
        for (int i = 0; i < rowCount; i++) {
            int row = fromRow + i;
            int start = offset(offsetBuffer, row);
            for (int j = 0; j < offsets[i + 1] - offsets[i]; j++) {
                if (data.isNull(start + j)) {
                    throw new IllegalArgumentException("column " + tokens.getName() + ", row " + row + ": token " + j
                            + " is null; token ids must not be null");
                }
                long id = data.get(start + j);
                if (id != (int) id) {
                    throw new IllegalArgumentException("column " + tokens.getName() + ", row " + row + ": token id "
                            + id + " at position " + j + " does not fit in int32");
                }
                packed[offsets[i] + j] = (int) id;
            }
        }
        return new TokenBatch(IntBuffer.wrap(packed), IntBuffer.wrap(offsets), rowCount);
    }

    /** The rows with null entries emptied, copied into fresh arrays. */
    private static TokenBatch compactedCopy(ListVector tokens, IntVector data, int fromRow, int rowCount) {
        ArrowBuf offsetBuffer = tokens.getOffsetBuffer();
        int[] offsets = new int[rowCount + 1];
        for (int i = 0; i < rowCount; i++) {
            int row = fromRow + i;
            int length = tokens.isNull(row) ? 0 : offset(offsetBuffer, row + 1) - offset(offsetBuffer, row);
            offsets[i + 1] = offsets[i] + length;
        }
        int[] packed = new int[offsets[rowCount]];
        for (int i = 0; i < rowCount; i++) {
            int start = offset(offsetBuffer, fromRow + i);
            for (int j = 0; j < offsets[i + 1] - offsets[i]; j++) {
                packed[offsets[i] + j] = data.get(start + j);
            }
        }
        return new TokenBatch(IntBuffer.wrap(packed), IntBuffer.wrap(offsets), rowCount);
    }
}
