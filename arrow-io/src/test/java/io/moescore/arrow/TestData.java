package io.moescore.arrow;

import java.nio.charset.StandardCharsets;
import java.util.List;

import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.vector.BigIntVector;
import org.apache.arrow.vector.IntVector;
import org.apache.arrow.vector.VarCharVector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.complex.ListVector;

import io.moescore.batch.ExpertLoad;
import io.moescore.batch.ScoreBatch;
import io.moescore.batch.SequenceScore;

/** Small tables and scores the tests share. */
final class TestData {
    private TestData() {
    }

    /** A token root with int64 ids; a null sequence is a null list entry. */
    static VectorSchemaRoot tokens(BufferAllocator allocator, long[] ids, int[][] sequences) {
        VectorSchemaRoot root = VectorSchemaRoot.create(ArrowSchemas.tokens(IdType.INT64, false), allocator);
        try {
            root.allocateNew();
            BigIntVector id = (BigIntVector) root.getVector(Columns.ID);
            for (int i = 0; i < ids.length; i++) {
                id.setSafe(i, ids[i]);
            }
            setLists((ListVector) root.getVector(Columns.TOKENS), sequences);
            root.setRowCount(ids.length);
            return root;
        } catch (RuntimeException e) {
            root.close();
            throw e;
        }
    }

    /** A token root with utf8 ids and a text column. */
    static VectorSchemaRoot tokens(BufferAllocator allocator, String[] ids, int[][] sequences, String[] texts) {
        VectorSchemaRoot root = VectorSchemaRoot.create(ArrowSchemas.tokens(IdType.UTF8, true), allocator);
        try {
            root.allocateNew();
            VarCharVector id = (VarCharVector) root.getVector(Columns.ID);
            VarCharVector text = (VarCharVector) root.getVector(Columns.TEXT);
            for (int i = 0; i < ids.length; i++) {
                id.setSafe(i, ids[i].getBytes(StandardCharsets.UTF_8));
                if (texts[i] == null) {
                    text.setNull(i);
                } else {
                    text.setSafe(i, texts[i].getBytes(StandardCharsets.UTF_8));
                }
            }
            setLists((ListVector) root.getVector(Columns.TOKENS), sequences);
            root.setRowCount(ids.length);
            return root;
        } catch (RuntimeException e) {
            root.close();
            throw e;
        }
    }

    static void setLists(ListVector list, int[][] sequences) {
        IntVector data = (IntVector) list.getDataVector();
        for (int i = 0; i < sequences.length; i++) {
            if (sequences[i] == null) {
                list.setNull(i);
                continue;
            }
            int start = list.startNewValue(i);
            for (int j = 0; j < sequences[i].length; j++) {
                data.setSafe(start + j, sequences[i][j]);
            }
            list.endValue(i, sequences[i].length);
        }
        list.setValueCount(sequences.length);
    }

    /**
     * Four scores covering every case: scored with per-token log-probs and top tokens, one token (no next token:
     * null mean NLL and perplexity), an error, and another scored row. The same values are asserted by
     * src/test/python/check_our_arrow.py.
     */
    static ScoreBatch fourScores() {
        return new ScoreBatch(List.of(
                new SequenceScore(3, -1.5, new float[] {-0.5f, -1.0f}, new int[] {7, 3}, null),
                new SequenceScore(1, 0.0, new float[0], new int[] {5, 9}, null),
                SequenceScore.failed(0, "empty sequence"),
                new SequenceScore(5, -2.0, new float[] {-0.25f, -0.75f, -0.5f, -0.5f}, new int[] {4095, 0}, null)),
                new ExpertLoad(1, 2), 0);
    }

    static ScoreBatch slice(ScoreBatch batch, int from, int to) {
        return new ScoreBatch(batch.scores().subList(from, to), batch.expertLoad(), batch.memorySplits());
    }
}
