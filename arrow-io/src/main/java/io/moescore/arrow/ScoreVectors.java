package io.moescore.arrow;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.function.ToIntFunction;

import org.apache.arrow.vector.BigIntVector;
import org.apache.arrow.vector.BitVector;
import org.apache.arrow.vector.FieldVector;
import org.apache.arrow.vector.Float4Vector;
import org.apache.arrow.vector.Float8Vector;
import org.apache.arrow.vector.IntVector;
import org.apache.arrow.vector.ValueVector;
import org.apache.arrow.vector.VarCharVector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.complex.ListVector;

import io.moescore.batch.RowScore;
import io.moescore.batch.ScoreBatch;
import io.moescore.batch.SequenceScore;

/**
 * Fills a {@link VectorSchemaRoot} of the result schema ({@link ArrowSchemas#results}) with one row per score,
 * in the batch's order, replacing what it held. The numbers are written as every output writes them
 * ({@link SequenceScore#perplexityOrNull} and its siblings: null where a row has an error or no next token, an
 * overflowing perplexity as the largest finite double). The optional columns are written when the root has
 * them: a row whose score lacks per-token log-probs or top tokens gets null there.
 */
public final class ScoreVectors {
    private ScoreVectors() {
    }

    /** Ids are copied from {@code ids[fromRow ..]}, a vector of the root's id type (the input's id column). */
    public static void fill(VectorSchemaRoot root, FieldVector ids, int fromRow, ScoreBatch scores) {
        int n = scores.scores().size();
        if (fromRow < 0 || fromRow + n > ids.getValueCount()) {
            throw new IndexOutOfBoundsException("ids hold " + ids.getValueCount() + " rows, need rows " + fromRow
                    + " to " + (fromRow + n - 1));
        }
        FieldVector target = idVector(root);
        if (ids.getMinorType() != target.getMinorType()) {
            throw new ArrowSchemaException("ids have type " + ArrowSchemas.typeName(ids.getField())
                    + ", the result's column " + Columns.ID + " " + ArrowSchemas.typeName(target.getField()));
        }
        root.allocateNew();
        for (int i = 0; i < n; i++) {
            target.copyFromSafe(fromRow + i, i, ids);
        }
        fillScores(root, scores.scores().stream().map(RowScore::of).toList());
    }

    /** Ids from {@code ids[i]} for score i; the root's id column must be int64. */
    public static void fill(VectorSchemaRoot root, long[] ids, ScoreBatch scores) {
        checkIdCount(ids.length, scores);
        BigIntVector target = typedId(root, BigIntVector.class, IdType.INT64);
        root.allocateNew();
        for (int i = 0; i < ids.length; i++) {
            target.setSafe(i, ids[i]);
        }
        fillScores(root, scores.scores().stream().map(RowScore::of).toList());
    }

    /** Ids from {@code ids[i]} (null allowed) for score i; the root's id column must be utf8. */
    public static void fill(VectorSchemaRoot root, String[] ids, ScoreBatch scores) {
        checkIdCount(ids.length, scores);
        VarCharVector target = typedId(root, VarCharVector.class, IdType.UTF8);
        root.allocateNew();
        for (int i = 0; i < ids.length; i++) {
            setString(target, i, ids[i]);
        }
        fillScores(root, scores.scores().stream().map(RowScore::of).toList());
    }

    /**
     * Fills a root of the score columns only ({@link ArrowSchemas#scores}, no id), replacing what it held: row i is
     * {@code scores.get(i)}.
     */
    public static void fill(VectorSchemaRoot root, List<SequenceScore> scores) {
        fillRows(root, scores.stream().map(RowScore::of).toList());
    }

    /** {@link #fill(VectorSchemaRoot, List)} of rows' scores (long documents, continuations). */
    public static void fillRows(VectorSchemaRoot root, List<RowScore> scores) {
        root.allocateNew();
        fillScores(root, scores);
    }

    private static void fillScores(VectorSchemaRoot root, List<RowScore> scores) {
        IntVector numTokens = (IntVector) required(root, Columns.NUM_TOKENS);
        Float8Vector sum = (Float8Vector) required(root, Columns.SUM_LOGPROB);
        Float8Vector meanNll = (Float8Vector) required(root, Columns.MEAN_NLL);
        Float8Vector perplexity = (Float8Vector) required(root, Columns.PERPLEXITY);
        ListVector tokenLogProbs = (ListVector) root.getVector(Columns.TOKEN_LOGPROBS);
        ListVector topTokens = (ListVector) root.getVector(Columns.TOP_TOKENS);
        IntVector numWindows = (IntVector) root.getVector(Columns.NUM_WINDOWS);
        BitVector truncated = (BitVector) root.getVector(Columns.TRUNCATED);
        Float8Vector continuationLogProb = (Float8Vector) root.getVector(Columns.CONTINUATION_LOGPROB);
        IntVector continuationTokens = (IntVector) root.getVector(Columns.CONTINUATION_TOKENS);
        BitVector isGreedy = (BitVector) root.getVector(Columns.IS_GREEDY);
        VarCharVector error = (VarCharVector) required(root, Columns.ERROR);
        reserve(tokenLogProbs, scores, s -> s.tokenLogProbs() == null ? 0 : s.tokenLogProbs().length);
        reserve(topTokens, scores, s -> s.topTokens() == null ? 0 : s.topTokens().length);
        for (int i = 0; i < scores.size(); i++) {
            RowScore row = scores.get(i);
            SequenceScore s = row.score();
            numTokens.setSafe(i, s.numTokens());
            setDouble(sum, i, s.sumLogProbOrNull());
            setDouble(meanNll, i, s.meanNllOrNull());
            setDouble(perplexity, i, s.perplexityOrNull());
            if (tokenLogProbs != null) {
                setFloats(tokenLogProbs, i, s.tokenLogProbs());
            }
            if (topTokens != null) {
                setInts(topTokens, i, s.topTokens());
            }
            if (numWindows != null) {
                numWindows.setSafe(i, row.numWindows());
            }
            if (truncated != null) {
                truncated.setSafe(i, row.truncated() ? 1 : 0);
            }
            if (continuationLogProb != null) {
                setDouble(continuationLogProb, i, row.continuationLogProbOrNull());
            }
            if (continuationTokens != null) {
                continuationTokens.setSafe(i, row.continuationTokens());
            }
            if (isGreedy != null) {
                Boolean greedy = row.isGreedyOrNull();
                if (greedy == null) {
                    isGreedy.setNull(i);
                } else {
                    isGreedy.setSafe(i, greedy ? 1 : 0);
                }
            }
            setString(error, i, s.error());
        }
        root.setRowCount(scores.size());
    }

    /**
     * Sizes a list column's element vector (just allocated, empty) for every row's values at once, so that the
     * per-value setSafe never grows it mid-batch (each growth reallocates and copies).
     */
    private static void reserve(ListVector list, List<RowScore> scores, ToIntFunction<SequenceScore> count) {
        if (list == null) {
            return;
        }
        long total = 0;
        for (RowScore row : scores) {
            total += count.applyAsInt(row.score());
        }
        ValueVector data = list.getDataVector();
        if (total > data.getValueCapacity()) {
            data.setInitialCapacity(Math.toIntExact(total));
            data.allocateNew();
        }
    }

    private static void setDouble(Float8Vector v, int i, Double value) {
        if (value != null) {
            v.setSafe(i, value);
        } else {
            v.setNull(i);
        }
    }

    private static void setString(VarCharVector v, int i, String value) {
        if (value == null) {
            v.setNull(i);
        } else {
            v.setSafe(i, value.getBytes(StandardCharsets.UTF_8));
        }
    }

    private static void setFloats(ListVector list, int i, float[] values) {
        if (values == null) {
            list.setNull(i);
            return;
        }
        Float4Vector data = (Float4Vector) list.getDataVector();
        int start = list.startNewValue(i);
        for (int j = 0; j < values.length; j++) {
            data.setSafe(start + j, values[j]);
        }
        list.endValue(i, values.length);
    }

    private static void setInts(ListVector list, int i, int[] values) {
        if (values == null) {
            list.setNull(i);
            return;
        }
        IntVector data = (IntVector) list.getDataVector();
        int start = list.startNewValue(i);
        for (int j = 0; j < values.length; j++) {
            data.setSafe(start + j, values[j]);
        }
        list.endValue(i, values.length);
    }

    private static void checkIdCount(int ids, ScoreBatch scores) {
        if (ids != scores.scores().size()) {
            throw new IllegalArgumentException(ids + " ids for " + scores.scores().size() + " scores");
        }
    }

    private static <V extends FieldVector> V typedId(VectorSchemaRoot root, Class<V> type, IdType idType) {
        FieldVector id = idVector(root);
        if (!type.isInstance(id)) {
            throw new ArrowSchemaException("the result's column " + Columns.ID + " has type "
                    + ArrowSchemas.typeName(id.getField()) + ", these ids are " + idType.name().toLowerCase());
        }
        return type.cast(id);
    }

    private static FieldVector idVector(VectorSchemaRoot root) {
        return required(root, Columns.ID);
    }

    private static FieldVector required(VectorSchemaRoot root, String column) {
        FieldVector v = root.getVector(column);
        if (v == null) {
            throw new ArrowSchemaException("the result root has no column " + column + " (schema: "
                    + root.getSchema() + ")");
        }
        return v;
    }
}
