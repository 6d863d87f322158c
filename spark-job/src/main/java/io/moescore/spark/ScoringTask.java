package io.moescore.spark;

import io.moescore.arrow.ArrowSchemas;
import io.moescore.arrow.ScoreVectors;
import io.moescore.batch.ExpertLoad;
import io.moescore.batch.RowScore;
import io.moescore.batch.ScoreColumns;
import io.moescore.batch.SequenceScore;
import io.moescore.engine.ScoreOptions;
import io.moescore.score.BatchPlanner;
import io.moescore.score.RowPlan;
import java.util.Arrays;
import java.util.List;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.complex.StructVector;
import org.apache.arrow.vector.types.pojo.ArrowType;
import org.apache.arrow.vector.types.pojo.Field;
import org.apache.arrow.vector.types.pojo.FieldType;
import org.apache.arrow.vector.types.pojo.Schema;
import org.apache.spark.TaskContext;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.util.ArrowUtils;
import org.apache.spark.sql.vectorized.ArrowColumnVector;
import org.apache.spark.sql.vectorized.ColumnVector;
import org.apache.spark.sql.vectorized.ColumnarBatch;

/**
 * One task's scoring, whatever its input's shape: windows of rows ({@link BatchTokens.Window}) are scored in
 * batches of at most {@code batchTokens} tokens, consecutive rows together (a longer row alone: {@link
 * BatchPlanner#plan}, as score-local), each batch a view of the window's buffers; a window holding continuation rows
 * or rows longer than the model's context (scored as {@code --long-rows} says) is scored through {@link RowPlan},
 * its rows copied once. The scores are written into Arrow vectors ({@link ScoreVectors}), which Spark reads as the
 * score columns (or one struct column of them). Counts rows, error rows and tokens for the task's report, and tells
 * the task's routing trace (if any) which rows it scores ({@link TaskTrace#input}, {@link TaskTrace#window}). Owns
 * its allocator (a child of Spark's Arrow allocator) and vectors; closed when the task completes.
 */
final class ScoringTask implements AutoCloseable {
    private final BatchPlanner.Scorer scorer;
    private final ScoreOptions options;
    private final RowPlan.Limits limits;
    private final int batchTokens;
    private final ExpertLoad load;
    private final TaskReports reports;
    private final TaskTrace trace;
    private final BufferAllocator allocator;
    private final VectorSchemaRoot scoreRoot;
    private final StructVector struct;
    private final ColumnVector[] columns;
    final long[] counts = new long[3]; // rows, error rows, tokens

    /** @param trace the task's routing trace, whose {@link TaskTrace#observe} {@code scorer} is; null: none */
    ScoringTask(BatchPlanner.Scorer scorer, ScoreOptions options, RowPlan.Limits limits, ScoreColumns.Layout layout,
                int batchTokens, ExpertLoad load, String scoresStruct, TaskReports reports, TaskTrace trace) {
        this.scorer = scorer;
        this.trace = trace;
        this.options = options;
        this.limits = limits;
        this.batchTokens = batchTokens;
        this.load = load;
        this.reports = reports;
        TaskContext task = TaskContext.get();
        this.allocator = ArrowUtils.rootAllocator().newChildAllocator("moescore scores"
                + (task == null ? "" : " task " + task.taskAttemptId()), 0, Long.MAX_VALUE);
        List<Field> fields = ArrowSchemas.scores(layout);
        try {
            if (scoresStruct == null) {
                this.struct = null;
                this.scoreRoot = VectorSchemaRoot.create(new Schema(fields), allocator);
                this.columns = scoreRoot.getFieldVectors().stream().map(ArrowColumnVector::new)
                        .toArray(ColumnVector[]::new);
            } else {
                this.struct = (StructVector) new Field(scoresStruct, FieldType.notNullable(ArrowType.Struct.INSTANCE),
                        fields).createVector(allocator);
                this.scoreRoot = new VectorSchemaRoot(struct.getChildrenFromFields());
                this.columns = new ColumnVector[] {new ArrowColumnVector(struct)};
            }
        } catch (RuntimeException e) {
            allocator.close();
            throw e;
        }
    }

    /**
     * The window's scores in row order: rows with an error keep it (0 tokens); the others are scored in batches of
     * consecutive rows (views of the window's buffers where every row is scored as itself).
     */
    RowScore[] score(BatchTokens.Window w) {
        int n = w.rows();
        int[] lengths = new int[n];
        Arrays.setAll(lengths, w::length);
        RowScore[] scores;
        if (RowPlan.identity(lengths, w.contextLengths() != null, limits)) {
            if (trace != null) {
                trace.window(counts[0], null);
            }
            SequenceScore[] sequences = BatchPlanner.score(scorer, lengths, w::batch, options, batchTokens, load);
            scores = new RowScore[n];
            Arrays.setAll(scores, i -> w.errors()[i] != null ? null : RowScore.of(sequences[i]));
        } else {
            int[][] rows = new int[n][];
            Arrays.setAll(rows, w::rowTokens);
            if (trace != null && trace.tokens()) {  // plans the rows once more: only for token records
                trace.window(counts[0], RowPlan.sequenceRows(rows, w.contextLengths(), limits));
            }
            scores = RowPlan.score(scorer, rows, w.contextLengths(), limits, options, batchTokens, load);
        }
        for (int i = 0; i < n; i++) {
            if (scores[i] == null) {
                scores[i] = RowScore.failed(0, w.errors()[i]);
            }
        }
        long errorRows = Arrays.stream(scores).filter(s -> !s.ok()).count();
        counts[0] += n;
        counts[1] += errorRows;
        counts[2] += w.tokenCount();
        if (reports != null) {
            reports.scored(n, w.tokenCount());
        }
        return scores;
    }

    /** The rows of {@code batch} are scored next (their ids for the routing trace). */
    void input(ColumnarBatch batch) {
        if (trace != null) {
            trace.input(counts[0], batch);
        }
    }

    /** {@code rows} are scored next (their ids for the routing trace). */
    void input(List<InternalRow> rows) {
        if (trace != null) {
            trace.input(counts[0], rows);
        }
    }

    /** The score columns holding {@code scores} (row i is scores[i]), as Spark reads them; valid until the next fill. */
    ColumnVector[] fill(List<RowScore> scores) {
        if (struct != null) {
            struct.allocateNew();
        }
        ScoreVectors.fillRows(scoreRoot, scores);
        if (struct != null) {
            for (int i = 0; i < scores.size(); i++) {
                struct.setIndexDefined(i);
            }
            struct.setValueCount(scores.size());
        }
        return columns;
    }

    @Override
    public void close() {
        try {
            if (struct != null) {
                struct.close();
            } else {
                scoreRoot.close();
            }
        } finally {
            allocator.close();
        }
    }
}
