package io.moescore.spark;

import io.moescore.batch.TokenBatch;
import io.moescore.model.TextTokenizer;
import io.moescore.score.BatchPlanner;
import java.nio.ByteOrder;
import java.nio.IntBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;
import org.apache.arrow.memory.ArrowBuf;
import org.apache.arrow.vector.BigIntVector;
import org.apache.arrow.vector.IntVector;
import org.apache.arrow.vector.complex.ListVector;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.vectorized.ArrowColumnVector;
import org.apache.spark.sql.vectorized.ColumnVector;
import org.apache.spark.sql.vectorized.ColumnarBatch;

/**
 * The token ids of a column batch's rows, a window at a time ({@link BatchPlanner#windowFull}), without an object
 * per row: the tokens column where it holds a value, else the text column tokenized, else why the row has none
 * (as {@link RowTokens} says for a row).
 *
 * <p>Copies per token: none where the window is all {@code list<int32>} rows of an Arrow vector (the window's
 * {@link TokenBatch} reads the vector's buffers; the engine makes its own batch from it), one otherwise (Spark's
 * Parquet vectors: one bulk copy per window where its rows are contiguous; {@code int64} ids narrowed and checked).
 * Continuation rows ({@link InputLayout#continuations}) are read row by row, context then continuation, into one
 * array each, and packed once.
 */
final class BatchTokens {
    private final int rows;
    private final InputLayout layout;
    private final ColumnVector corrupt;
    private final ColumnVector text;
    private final TokenColumn tokens;
    private final ColumnarBatch batch;
    private final Supplier<TextTokenizer> tokenizer;
    private int next;

    /**
     * The rows of a window: sequence i (row {@code fromRow + i}) is {@code tokens[offsets[i] .. offsets[i+1])},
     * empty where {@code errors[i]} says why the row cannot be scored; {@code tokenCount} ids in all. For continuation
     * rows, {@code contextLengths[i]} of row i's tokens are its context's (null: rows of tokens or text).
     */
    record Window(int fromRow, IntBuffer tokens, IntBuffer offsets, String[] errors, long tokenCount,
                  int[] contextLengths) {
        Window(int fromRow, IntBuffer tokens, IntBuffer offsets, String[] errors, long tokenCount) {
            this(fromRow, tokens, offsets, errors, tokenCount, null);
        }

        int rows() {
            return errors.length;
        }

        int length(int i) {
            return offsets.get(i + 1) - offsets.get(i);
        }

        /** Sequences {@code from .. to} as a batch over the same buffers. */
        TokenBatch batch(int from, int to) {
            return new TokenBatch(tokens, offsets.slice(from, to - from + 1), to - from);
        }

        /** Row i's tokens, copied; null where the row has an error. */
        int[] rowTokens(int i) {
            if (errors[i] != null) {
                return null;
            }
            int[] out = new int[length(i)];
            tokens.get(offsets.get(i), out);
            return out;
        }

        /** A window of whole token arrays (null: that row's error), copied end to end. */
        static Window of(int[][] rows, String[] errors) {
            return of(rows, errors, null);
        }

        /** {@link #of(int[][], String[])} of continuation rows ({@code contextLengths}; null: none). */
        static Window of(int[][] rows, String[] errors, int[] contextLengths) {
            int[] offsets = new int[rows.length + 1];
            for (int i = 0; i < rows.length; i++) {
                offsets[i + 1] = offsets[i] + (rows[i] == null ? 0 : rows[i].length);
            }
            int[] packed = new int[offsets[rows.length]];
            for (int i = 0; i < rows.length; i++) {
                if (rows[i] != null) {
                    System.arraycopy(rows[i], 0, packed, offsets[i], rows[i].length);
                }
            }
            return new Window(0, IntBuffer.wrap(packed), IntBuffer.wrap(offsets), errors, packed.length,
                    contextLengths);
        }
    }

    BatchTokens(ColumnarBatch batch, InputLayout layout, Supplier<TextTokenizer> tokenizer) {
        this.rows = batch.numRows();
        this.layout = layout;
        this.corrupt = layout.corruptRecord() >= 0 ? batch.column(layout.corruptRecord()) : null;
        this.text = layout.text() >= 0 ? batch.column(layout.text()) : null;
        this.tokens = layout.tokens() >= 0 ? TokenColumn.of(batch.column(layout.tokens())) : null;
        this.batch = batch;
        this.tokenizer = tokenizer;
    }

    boolean hasNext() {
        return next < rows;
    }

    /** The next window of rows: until they hold about {@link BatchPlanner#WINDOW_BATCHES} batches of tokens. */
    Window next(int batchTokens) {
        if (layout.continuations()) {
            return nextContinuations(batchTokens);
        }
        int from = next;
        int to = from;
        long total = 0;
        int[][] tokenized = null;
        String[] errors = null;
        while (to < rows && !BatchPlanner.windowFull(total, batchTokens)) {
            if (corrupt == null && tokens != null && !tokens.isNull(to)) {
                total += tokens.length(to);
            } else {
                if (tokenized == null) {  // sized for the rest of the batch: windows of text are rare
                    tokenized = new int[rows - from][];
                    errors = new String[rows - from];
                }
                int i = to - from;
                errors[i] = withoutTokens(to, tokenized, i);
                total += tokenized[i] == null ? 0 : tokenized[i].length;
            }
            to++;
        }
        next = to;
        if (tokenized == null && tokens != null && tokens.viewable(from, to)) {
            return tokens.view(from, to, total);
        }
        return packed(from, to, tokenized, errors);
    }

    /** The next window of continuation rows: each row's context and continuation read into one token array. */
    private Window nextContinuations(int batchTokens) {
        int from = next;
        List<int[]> rowTokens = new ArrayList<>();
        List<String> errors = new ArrayList<>();
        List<Integer> contextLengths = new ArrayList<>();
        long total = 0;
        while (next < rows && !BatchPlanner.windowFull(total, batchTokens)) {
            RowTokens t = RowTokens.of(batch.getRow(next), layout, tokenizer);  // a view of the row, no copy
            rowTokens.add(t.tokens());
            errors.add(t.error());
            contextLengths.add(t.contextLength());
            total += t.tokens() == null ? 0 : t.tokens().length;
            next++;
        }
        Window w = Window.of(rowTokens.toArray(int[][]::new), errors.toArray(String[]::new),
                contextLengths.stream().mapToInt(Integer::intValue).toArray());
        return new Window(from, w.tokens(), w.offsets(), w.errors(), w.tokenCount(), w.contextLengths());
    }

    /** A row with no tokens value: its text tokenized into {@code into[i]}, or why it has no tokens. */
    private String withoutTokens(int row, int[][] into, int i) {
        if (corrupt != null && !corrupt.isNullAt(row)) {
            return RowTokens.malformed(corrupt.getUTF8String(row).toString());
        }
        if (tokens != null && !tokens.isNull(row)) {
            return null;  // a tokens row of a batch that also holds malformed records: read in packed()
        }
        if (text != null && !text.isNullAt(row)) {
            try {
                into[i] = tokenizer.get().encode(text.getUTF8String(row).toString());
                return null;
            } catch (RuntimeException e) {
                return RowTokens.notTokenized(e);
            }
        }
        return RowTokens.missing(layout);
    }

    /** The rows' tokens copied end to end into one array (tokenized text as it came), noting errors. */
    private Window packed(int from, int to, int[][] tokenizedAhead, String[] errorsAhead) {
        int n = to - from;
        String[] errors = new String[n];
        int[][] tokenized = new int[n][];
        int[] offsets = new int[n + 1];
        long total = 0;
        for (int i = 0; i < n; i++) {
            int row = from + i;
            int length = 0;
            if (tokenizedAhead != null && (errorsAhead[i] != null || tokenizedAhead[i] != null)) {
                errors[i] = errorsAhead[i];
                tokenized[i] = tokenizedAhead[i];
                length = tokenized[i] == null ? 0 : tokenized[i].length;
            } else {
                int nullAt = tokens.firstNullElement(row);
                if (nullAt >= 0) {
                    errors[i] = RowTokens.nullId(nullAt);
                } else {
                    length = tokens.length(row);
                }
            }
            total += length;
            if (total > Integer.MAX_VALUE - 8) {
                throw new IllegalStateException("a window of rows " + from + " to " + row + " holds more than 2^31 "
                        + "tokens");
            }
            offsets[i + 1] = (int) total;
        }
        int[] packed = tokens != null ? tokens.bulk(from, to, offsets, errors, tokenized) : null;
        if (packed == null) {
            packed = new int[(int) total];
            for (int i = 0; i < n; i++) {
                if (tokenized[i] != null) {
                    System.arraycopy(tokenized[i], 0, packed, offsets[i], tokenized[i].length);
                } else if (errors[i] == null && offsets[i + 1] > offsets[i]) {
                    errors[i] = tokens.copy(from + i, packed, offsets[i]);
                }
            }
        }
        // a row found unusable while copied (an id outside int32) becomes an empty sequence: the engine skips it
        boolean emptied = false;
        for (int i = 0; i < n; i++) {
            emptied |= errors[i] != null && offsets[i + 1] > offsets[i];
        }
        if (emptied) {
            return compact(from, packed, offsets, errors);
        }
        return new Window(from, IntBuffer.wrap(packed), IntBuffer.wrap(offsets), errors, total);
    }

    private static Window compact(int from, int[] packed, int[] offsets, String[] errors) {
        int n = errors.length;
        int[] kept = new int[n + 1];
        for (int i = 0; i < n; i++) {
            int length = errors[i] == null ? offsets[i + 1] - offsets[i] : 0;
            if (length > 0) {
                System.arraycopy(packed, offsets[i], packed, kept[i], length);
            }
            kept[i + 1] = kept[i] + length;
        }
        return new Window(from, IntBuffer.wrap(packed), IntBuffer.wrap(kept), errors, kept[n]);
    }

    /** A tokens column of a batch: Arrow list vectors read in place, Spark's vectors through its API. */
    abstract static class TokenColumn {
        final ColumnVector column;

        TokenColumn(ColumnVector column) {
            this.column = column;
        }

        static TokenColumn of(ColumnVector column) {
            if (column instanceof ArrowColumnVector arrow && arrow.getValueVector() instanceof ListVector list
                    && (list.getDataVector() instanceof IntVector || list.getDataVector() instanceof BigIntVector)) {
                return new ArrowList(column, list);
            }
            return new SparkArray(column);
        }

        boolean isNull(int row) {
            return column.isNullAt(row);
        }

        abstract int length(int row);

        /** The position of the row's first null id, or -1. */
        abstract int firstNullElement(int row);

        /** Copies the row's ids to {@code dest[at ..]}; returns why it cannot be scored (an id outside int32) or null. */
        abstract String copy(int row, int[] dest, int at);

        /** Whether {@link #view} can read rows {@code from .. to} in place (int32, no null lists spanning ids). */
        boolean viewable(int from, int to) {
            return false;
        }

        Window view(int from, int to, long total) {
            throw new UnsupportedOperationException();
        }

        /** All rows' ids in one copy where that is possible (contiguous, no text, no errors), else null. */
        int[] bulk(int from, int to, int[] offsets, String[] errors, int[][] tokenized) {
            return null;
        }
    }

    /** An Arrow {@code list<int32>} or {@code list<int64>} vector (the arrow data source, converted rows). */
    static final class ArrowList extends TokenColumn {
        private final ListVector list;
        private final ArrowBuf offsets;
        private final IntVector ints;
        private final BigIntVector longs;
        /** Whether any token id of the batch is null: counted once (Arrow counts the validity bits on every call). */
        private final boolean elementsHaveNulls;

        ArrowList(ColumnVector column, ListVector list) {
            super(column);
            this.list = list;
            this.offsets = list.getOffsetBuffer();
            this.ints = list.getDataVector() instanceof IntVector i ? i : null;
            this.longs = list.getDataVector() instanceof BigIntVector l ? l : null;
            this.elementsHaveNulls = list.getDataVector().getNullCount() > 0;
        }

        private int start(int row) {
            return offsets.getInt((long) row * Integer.BYTES);
        }

        @Override
        boolean isNull(int row) {
            return list.isNull(row);
        }

        @Override
        int length(int row) {
            return start(row + 1) - start(row);
        }

        @Override
        int firstNullElement(int row) {
            if (!elementsHaveNulls) {
                return -1;
            }
            for (int i = start(row); i < start(row + 1); i++) {
                if (ints != null ? ints.isNull(i) : longs.isNull(i)) {
                    return i - start(row);
                }
            }
            return -1;
        }

        @Override
        String copy(int row, int[] dest, int at) {
            int start = start(row);
            int n = length(row);
            if (ints != null) {
                ArrowBuf data = ints.getDataBuffer();
                for (int j = 0; j < n; j++) {
                    dest[at + j] = data.getInt((long) (start + j) * Integer.BYTES);
                }
                return null;
            }
            ArrowBuf data = longs.getDataBuffer();
            for (int j = 0; j < n; j++) {
                long id = data.getLong((long) (start + j) * Long.BYTES);
                if (id != (int) id) {
                    return RowTokens.outsideInt(id, j);
                }
                dest[at + j] = (int) id;
            }
            return null;
        }

        @Override
        boolean viewable(int from, int to) {
            if (ints == null || to == from || elementsHaveNulls) {
                return false;
            }
            for (int row = from; row < to; row++) {
                if (list.isNull(row)) {
                    return false;
                }
            }
            return true;
        }

        @Override
        Window view(int from, int to, long total) {
            int end = start(to);
            IntBuffer tokenBuffer = end == 0 ? IntBuffer.allocate(0) : ints.getDataBuffer().nioBuffer(0,
                    end * Integer.BYTES).order(ByteOrder.LITTLE_ENDIAN).asIntBuffer();
            IntBuffer offsetBuffer = offsets.nioBuffer((long) from * Integer.BYTES, (to - from + 1) * Integer.BYTES)
                    .order(ByteOrder.LITTLE_ENDIAN).asIntBuffer();
            return new Window(from, tokenBuffer, offsetBuffer, new String[to - from], total);
        }
    }

    /** Spark's array&lt;int&gt; or array&lt;bigint&gt; vectors (Parquet's vectorized reader, others). */
    static final class SparkArray extends TokenColumn {
        private final boolean longs;
        private final ColumnVector elements;
        private final SparkInternals.ArrayLayout layout;

        SparkArray(ColumnVector column) {
            super(column);
            this.longs = ((ArrayType) column.dataType()).elementType().equals(DataTypes.LongType);
            this.layout = SparkInternals.arrayLayout(column);
            this.elements = layout != null ? column.getChild(0) : null;
        }

        @Override
        int length(int row) {
            return layout != null ? layout.length(row) : column.getArray(row).numElements();
        }

        @Override
        int firstNullElement(int row) {
            if (layout != null) {
                if (!elements.hasNull()) {
                    return -1;
                }
                int start = layout.offset(row);
                for (int j = 0; j < layout.length(row); j++) {
                    if (elements.isNullAt(start + j)) {
                        return j;
                    }
                }
                return -1;
            }
            var array = column.getArray(row);
            for (int j = 0; j < array.numElements(); j++) {
                if (array.isNullAt(j)) {
                    return j;
                }
            }
            return -1;
        }

        @Override
        String copy(int row, int[] dest, int at) {
            if (layout == null) {
                var array = column.getArray(row);
                for (int j = 0; j < array.numElements(); j++) {
                    long id = longs ? array.getLong(j) : array.getInt(j);
                    if (id != (int) id) {
                        return RowTokens.outsideInt(id, j);
                    }
                    dest[at + j] = (int) id;
                }
                return null;
            }
            int start = layout.offset(row);
            int n = layout.length(row);
            for (int j = 0; j < n; j++) {
                long id = longs ? elements.getLong(start + j) : elements.getInt(start + j);
                if (id != (int) id) {
                    return RowTokens.outsideInt(id, j);
                }
                dest[at + j] = (int) id;
            }
            return null;
        }

        @Override
        int[] bulk(int from, int to, int[] offsets, String[] errors, int[][] tokenized) {
            if (layout == null || longs || from == to) {
                return null;
            }
            int first = layout.offset(from);
            for (int i = 0; i < errors.length; i++) {
                int row = from + i;
                if (errors[i] != null || tokenized[i] != null || isNull(row)
                        || layout.offset(row) != first + offsets[i]) {
                    return null;
                }
            }
            return elements.getInts(first, offsets[errors.length]);
        }
    }
}
