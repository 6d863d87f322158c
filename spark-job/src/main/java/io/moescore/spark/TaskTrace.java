package io.moescore.spark;

import io.moescore.batch.ExpertLoad;
import io.moescore.batch.ScoreBatch;
import io.moescore.batch.TokenRouting;
import io.moescore.placement.RoutingRecord;
import io.moescore.score.BatchPlanner;
import io.moescore.spark.trace.TokenTrace;
import io.moescore.spark.trace.TraceWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.List;
import java.util.Map;
import java.util.function.IntFunction;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.vectorized.ColumnVector;
import org.apache.spark.sql.vectorized.ColumnarBatch;

/**
 * One task attempt's routing trace: each batch the task scores becomes one {@link RoutingRecord} per MoE layer
 * (layers no token reached, the dense ones, are left out), batch ids counting from 0 in scoring order. The file is
 * opened at the first batch and complete once {@link #close()}d. Token records name their sequence's input row by its
 * id where the trace knows the id column: the task says which input rows it scores ({@link #input}) and which of a
 * window's rows each scored sequence is ({@link #window}). Not thread-safe (one task).
 */
final class TaskTrace implements AutoCloseable {
    /** Opens the file on first use. */
    interface Opener {
        TraceWriter open() throws IOException;
    }

    /** Opens the token file ({@code --routing-trace-tokens}) on first use. */
    interface TokenOpener {
        TokenTrace open() throws IOException;
    }

    private final Opener opener;
    private final String executor;
    private final int device;
    private final int partition;
    private final TokenOpener tokenOpener;
    private final int idOrdinal;
    private final DataType idType;
    private TraceWriter writer;
    private TokenTrace tokenWriter;
    private long batches;
    private long sequences;
    /** The input's first row (its ordinal in the task) and the reader of its rows' ids, or null. */
    private long inputFirstRow;
    private IntFunction<Object> inputIds;
    /** The window being scored: its first row's ordinal in the task, its sequences' rows (null: one per row). */
    private long windowFirstRow;
    private int[] sequenceRows;
    private int windowSequences;
    private long nanos;
    private boolean closed;

    TaskTrace(Opener opener, String executor, int device, int partition) {
        this(opener, null, executor, device, partition, -1, null);
    }

    /**
     * With {@code tokenOpener} (null: none), also each token's routing, from batches scored asking for it; each
     * record with its row's id from the input's column {@code idOrdinal} of {@code idType} (-1: no id column).
     */
    TaskTrace(Opener opener, TokenOpener tokenOpener, String executor, int device, int partition, int idOrdinal,
              DataType idType) {
        this.opener = opener;
        this.tokenOpener = tokenOpener;
        this.executor = executor;
        this.device = device;
        this.partition = partition;
        this.idOrdinal = tokenOpener == null ? -1 : idOrdinal;
        this.idType = idType;
    }

    /** Whether this trace records each token's routing. */
    boolean tokens() {
        return tokenOpener != null;
    }

    /** The task scores {@code batch}'s rows next, the first of them row {@code firstRow} of the task. */
    void input(long firstRow, ColumnarBatch batch) {
        if (idOrdinal >= 0) {
            ColumnVector ids = batch.column(idOrdinal);
            input(firstRow, i -> OutputVectors.id(ids, i, idType));
        }
    }

    /** The task scores {@code rows} next, the first of them row {@code firstRow} of the task. */
    void input(long firstRow, List<InternalRow> rows) {
        if (idOrdinal >= 0) {
            input(firstRow, i -> OutputVectors.id(rows.get(i), idOrdinal, idType));
        }
    }

    private void input(long firstRow, IntFunction<Object> ids) {
        inputFirstRow = firstRow;
        inputIds = ids;
    }

    /**
     * The task scores a window of rows next, its first row {@code firstRow} of the task; its scored sequences, in
     * order, belong to its rows {@code sequenceRows} (null: sequence i is row i).
     */
    void window(long firstRow, int[] sequenceRows) {
        windowFirstRow = firstRow;
        this.sequenceRows = sequenceRows;
        windowSequences = 0;
    }

    /**
     * {@code scorer}, recording each batch's expert load here (and, where this trace has tokens, each token's
     * routing, which it asks the scorer for).
     */
    BatchPlanner.Scorer observe(BatchPlanner.Scorer scorer) {
        return (batch, options) -> {
            ScoreBatch result = scorer.score(batch, tokenOpener == null ? options : options.withTokenRouting(true));
            if (tokenOpener != null) {
                addTokens(result.tokenRouting(), result.scores().size());
            }
            add(result.expertLoad());
            return result;
        };
    }

    /** The batch's (the next to be {@link #add}ed) sequences' routing, sequence ids counting on over the task. */
    private void addTokens(TokenRouting routing, int numSequences) {
        long start = System.nanoTime();
        try {
            if (tokenWriter == null) {
                tokenWriter = tokenOpener.open();
            }
            for (int s : routing.sequences()) {
                int inWindow = windowSequences + s;
                long row = windowFirstRow + (sequenceRows == null ? inWindow : sequenceRows[inWindow]);
                Object id = inputIds == null ? null : inputIds.apply((int) (row - inputFirstRow));
                for (Map.Entry<Integer, TokenRouting.Choices> l : routing.layers(s).entrySet()) {
                    tokenWriter.write(partition, batches, sequences + s, id, l.getKey(), l.getValue());
                }
            }
            sequences += numSequences;
            windowSequences += numSequences;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the token routing trace of partition " + partition + ": "
                    + e, e);
        } finally {
            nanos += System.nanoTime() - start;
        }
    }

    void add(ExpertLoad load) {
        long start = System.nanoTime();
        try {
            if (writer == null) {
                writer = opener.open();
            }
            for (int layer = 0; layer < load.numLayers(); layer++) {
                long[] tokens = load.layer(layer);
                long sum = 0;
                for (long t : tokens) {
                    sum += t;
                }
                if (sum > 0) {
                    writer.write(new RoutingRecord(executor, device, partition, batches, layer, tokens));
                }
            }
            batches++;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the routing trace of partition " + partition + ": " + e, e);
        } finally {
            nanos += System.nanoTime() - start;
        }
    }

    /** Time spent tracing so far (recording and closing the file), in nanoseconds. */
    long nanos() {
        return nanos;
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        long start = System.nanoTime();
        try {
            try (TraceWriter w = writer) {
                if (tokenWriter != null) {
                    tokenWriter.close();
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot finish the routing trace of partition " + partition + ": " + e, e);
        } finally {
            nanos += System.nanoTime() - start;
        }
    }
}
