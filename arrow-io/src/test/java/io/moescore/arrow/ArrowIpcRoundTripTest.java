package io.moescore.arrow;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.vector.Float8Vector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.ipc.ArrowWriter;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import io.moescore.batch.ExpertLoad;
import io.moescore.batch.ScoreBatch;
import io.moescore.batch.SequenceScore;
import io.moescore.batch.TokenBatch;

class ArrowIpcRoundTripTest {
    @TempDir
    Path dir;

    @RegisterExtension
    final LeakCheckedAllocator arrow = new LeakCheckedAllocator();
    private BufferAllocator allocator;

    @BeforeEach
    void allocator() {
        allocator = arrow.allocator();
    }

    @ParameterizedTest
    @EnumSource(IpcFormat.class)
    void scoresWrittenInTwoBatchesReadBackInOrder(IpcFormat format) throws IOException {
        Path file = dir.resolve("results" + format.extension());
        ScoreBatch scores = TestData.fourScores();
        try (ArrowScoreWriter out = ArrowScoreWriter.open(file, ArrowSchemas.results(IdType.INT64, true, true),
                allocator)) {
            out.write(new long[] {10, 11}, TestData.slice(scores, 0, 2));
            out.write(new long[] {12, 13}, TestData.slice(scores, 2, 4));
        }
        try (ArrowIpcReader in = ArrowIpcReader.open(file, allocator)) {
            assertEquals(format, in.format());
            assertEquals(ArrowSchemas.results(IdType.INT64, true, true), in.schema());
            int i = 0;
            while (in.loadNextBatch()) {
                assertEquals(2, in.root().getRowCount());
                for (int r = 0; r < 2; r++, i++) {
                    ResultAssertions.assertFourScoresRow(in.root(), r, i, 10L + i);
                }
            }
            assertEquals(4, i);
        }
    }

    @Test
    void idsAreCopiedFromTheInputColumnAtAnOffset() throws IOException {
        Path file = dir.resolve("results.arrow");
        String[] ids = {"a", "row-10", "row-11", "zeilé-12", "row-13"};
        int[][] sequences = {{1}, {1, 2, 3}, {5}, {}, {1, 2, 3, 4, 5}};
        try (VectorSchemaRoot input = TestData.tokens(allocator, ids, sequences, new String[5]);
             ArrowScoreWriter out = ArrowScoreWriter.open(file, ArrowSchemas.results(IdType.UTF8, false, false),
                     allocator)) {
            out.write(input.getVector(Columns.ID), 1, TestData.fourScores());
        }
        try (ArrowIpcReader in = ArrowIpcReader.open(file, allocator)) {
            assertTrue(in.loadNextBatch());
            for (int r = 0; r < 4; r++) {
                ResultAssertions.assertFourScoresRow(in.root(), r, r, ids[r + 1]);
            }
            assertFalse(in.loadNextBatch());
        }
    }

    @Test
    void idsOfTheWrongTypeAreRefused() throws IOException {
        Path file = dir.resolve("results.arrow");
        try (ArrowScoreWriter out = ArrowScoreWriter.open(file, ArrowSchemas.results(IdType.INT64, false, false),
                allocator)) {
            ArrowSchemaException e = assertThrows(ArrowSchemaException.class,
                    () -> out.write(new String[] {"a", "b", "c", "d"}, TestData.fourScores()));
            assertEquals("the result's column id has type int64, these ids are utf8", e.getMessage());
        }
    }

    @ParameterizedTest
    @EnumSource(IpcFormat.class)
    void tokenFilesReadBatchByBatch(IpcFormat format) throws IOException {
        Path file = dir.resolve("tokens" + format.extension());
        int[][][] batches = {{{1, 2, 3}, {5}}, {{}, {4095, 0, 7, 7}, {9}}};
        try (VectorSchemaRoot root = VectorSchemaRoot.create(ArrowSchemas.tokens(IdType.INT64, false), allocator);
             FileChannel channel = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
             ArrowWriter writer = format.newWriter(root, channel)) {
            writer.start();
            long id = 0;
            for (int[][] batch : batches) {
                long[] ids = new long[batch.length];
                for (int i = 0; i < ids.length; i++) {
                    ids[i] = id++;
                }
                try (VectorSchemaRoot filled = TestData.tokens(allocator, ids, batch)) {
                    moveInto(filled, root);
                }
                writer.writeBatch();
            }
        }
        List<int[]> seen = new ArrayList<>();
        try (ArrowTokenReader in = ArrowTokenReader.open(file, allocator)) {
            assertEquals(IdType.INT64, in.idType());
            assertEquals(format, in.format());
            assertNull(in.text());
            int batch = 0;
            while (in.loadNextBatch()) {
                assertEquals(batches[batch].length, in.rowCount());
                TokenBatch tokens = in.tokenBatch();
                for (int s = 0; s < tokens.numSequences(); s++) {
                    int[] seq = new int[tokens.length(s)];
                    tokens.copySequence(s, seq, 0);
                    seen.add(seq);
                    assertEquals((long) seen.size() - 1, in.ids().getObject(s));
                }
                batch++;
            }
            assertEquals(2, batch);
        }
        assertEquals(5, seen.size());
        assertArrayEquals(new int[] {4095, 0, 7, 7}, seen.get(3));
        assertArrayEquals(new int[] {}, seen.get(2));
    }

    private static void moveInto(VectorSchemaRoot from, VectorSchemaRoot to) {
        for (int i = 0; i < from.getFieldVectors().size(); i++) {
            from.getVector(i).makeTransferPair(to.getVector(i)).transfer();
        }
        to.setRowCount(from.getRowCount());
    }

    /**
     * Arrow results spell the numbers as every output does (SequenceScore): an overflowing perplexity is the largest
     * finite double with mean_nll exact, a row flagged non-finite and a one-token row get nulls, never NaN or inf.
     */
    @Test
    void overflowNonFiniteAndOneTokenRowsAreSpelledAsEverywhere() {
        ScoreBatch batch = new ScoreBatch(List.of(
                SequenceScore.scored(3, new float[] {-800f, -700f}, 0, false, null),
                SequenceScore.scored(3, new float[] {-1f, Float.NaN}, 0, false, null),
                SequenceScore.scored(1, new float[0], 0, false, null)), new ExpertLoad(1, 1), 0);
        try (VectorSchemaRoot root = VectorSchemaRoot.create(ArrowSchemas.results(IdType.INT64, false, false),
                allocator)) {
            ScoreVectors.fill(root, new long[] {1, 2, 3}, batch);
            Float8Vector meanNll = (Float8Vector) root.getVector(Columns.MEAN_NLL);
            Float8Vector perplexity = (Float8Vector) root.getVector(Columns.PERPLEXITY);
            Float8Vector sum = (Float8Vector) root.getVector(Columns.SUM_LOGPROB);
            assertEquals(750.0, meanNll.get(0));
            assertEquals(Double.MAX_VALUE, perplexity.get(0));
            assertEquals(-1500.0, sum.get(0));
            assertTrue(sum.isNull(1) && meanNll.isNull(1) && perplexity.isNull(1));
            assertTrue(root.getVector(Columns.ERROR).getObject(1).toString().contains("position 2"));
            assertEquals(0.0, sum.get(2));
            assertTrue(meanNll.isNull(2) && perplexity.isNull(2));
        }
    }
}
