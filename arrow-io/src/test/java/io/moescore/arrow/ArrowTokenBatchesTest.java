package io.moescore.arrow;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.vector.IntVector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.complex.ListVector;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.Test;

import io.moescore.batch.TokenBatch;

class ArrowTokenBatchesTest {
    private static final int[][] SEQUENCES = {{1, 2, 3}, {5}, {}, {4095, 0, 7, 7}, {9, 8}};

    @RegisterExtension
    final LeakCheckedAllocator arrow = new LeakCheckedAllocator();
    private BufferAllocator allocator;

    @BeforeEach
    void allocator() {
        allocator = arrow.allocator();
    }

    @Test
    void viewSeesTheSameTokens() {
        try (VectorSchemaRoot root = TestData.tokens(allocator, new long[] {1, 2, 3, 4, 5}, SEQUENCES)) {
            TokenBatch batch = ArrowTokenBatches.view(tokens(root));
            assertEquals(SEQUENCES.length, batch.numSequences());
            for (int s = 0; s < SEQUENCES.length; s++) {
                assertArrayEquals(SEQUENCES[s], sequence(batch, s), "sequence " + s);
            }
            assertEquals(10, batch.totalTokens());
        }
    }

    @Test
    void viewIsZeroCopy() {
        try (VectorSchemaRoot root = TestData.tokens(allocator, new long[] {1, 2, 3, 4, 5}, SEQUENCES)) {
            ListVector list = tokens(root);
            TokenBatch batch = ArrowTokenBatches.view(list, 3, 2);
            assertEquals(4095, batch.token(0, 0));
            // Writing the Arrow buffers after the view was made shows through it: the view reads them in place.
            ((IntVector) list.getDataVector()).getDataBuffer().setInt(4L * Integer.BYTES, -42);
            assertEquals(-42, batch.token(0, 0));
            list.getOffsetBuffer().setInt(5L * Integer.BYTES, 9);
            assertEquals(1, batch.length(1), "the offsets are read in place too");
        }
    }

    @Test
    void rowRangeKeepsAbsoluteOffsets() {
        try (VectorSchemaRoot root = TestData.tokens(allocator, new long[] {1, 2, 3, 4, 5}, SEQUENCES)) {
            TokenBatch batch = ArrowTokenBatches.view(tokens(root), 1, 3);
            assertEquals(3, batch.numSequences());
            assertArrayEquals(new int[] {5}, sequence(batch, 0));
            assertArrayEquals(new int[] {}, sequence(batch, 1));
            assertArrayEquals(new int[] {4095, 0, 7, 7}, sequence(batch, 2));
            assertEquals(0, ArrowTokenBatches.view(tokens(root), 5, 0).numSequences());
            assertThrows(IndexOutOfBoundsException.class, () -> ArrowTokenBatches.view(tokens(root), 4, 2));
        }
    }

    @Test
    void nullListIsAnEmptySequence() {
        int[][] withNull = {{1, 2}, null, {3}};
        try (VectorSchemaRoot root = TestData.tokens(allocator, new long[] {1, 2, 3}, withNull)) {
            TokenBatch batch = ArrowTokenBatches.view(tokens(root));
            assertEquals(0, batch.length(1));
            assertArrayEquals(new int[] {3}, sequence(batch, 2));
        }
    }

    @Test
    void nullListThatStillSpansValuesIsCompacted() {
        int[][] sequences = {{1, 2}, {8, 9}, {3}};
        try (VectorSchemaRoot root = TestData.tokens(allocator, new long[] {1, 2, 3}, sequences)) {
            ListVector list = tokens(root);
            // Arrow allows a null entry over child values: mark row 1 null, leaving its offsets spanning 8, 9.
            org.apache.arrow.vector.BitVectorHelper.unsetBit(list.getValidityBuffer(), 1);
            TokenBatch batch = ArrowTokenBatches.view(list);
            assertArrayEquals(new int[] {1, 2}, sequence(batch, 0));
            assertEquals(0, batch.length(1));
            assertArrayEquals(new int[] {3}, sequence(batch, 2));
        }
    }

    @Test
    void nullTokenIsRefusedNamingTheRow() {
        try (VectorSchemaRoot root = TestData.tokens(allocator, new long[] {1, 2}, new int[][] {{1, 2}, {3, 4}})) {
            ListVector list = tokens(root);
            ((IntVector) list.getDataVector()).setNull(3);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> ArrowTokenBatches.view(list));
            assertTrue(e.getMessage().contains("row 1: token 1 is null"), e.getMessage());
        }
    }

    private static ListVector tokens(VectorSchemaRoot root) {
        return (ListVector) root.getVector(Columns.TOKENS);
    }

    private static int[] sequence(TokenBatch batch, int s) {
        int[] out = new int[batch.length(s)];
        batch.copySequence(s, out, 0);
        return out;
    }
}
