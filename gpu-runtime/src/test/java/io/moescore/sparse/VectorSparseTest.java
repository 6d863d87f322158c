package io.moescore.sparse;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * 128:2:8 pruning keeps 2 of every 8 (one row of each pair per 128-column slice, 2:4 inside it); packing,
 * decompressing and the 2:4 form give back the pruned matrix exactly.
 */
class VectorSparseTest {
    @Test
    void pruneKeepsOneRowOfEachPairPerSliceTwoOfFourInside() {
        int rows = 16;
        int cols = 384;
        float[] w = gaussian(rows, cols, 7);
        float[] pruned = VectorSparse.pruneMagnitude(w, rows, cols);

        assertEquals(rows * cols / 4, nonZeros(pruned), "75% sparse");
        for (int p = 0; p < rows / 2; p++) {
            for (int s = 0; s < 3; s++) {
                int first = nonZeros(pruned, 2 * p, cols, s * 128, s * 128 + 128);
                int second = nonZeros(pruned, 2 * p + 1, cols, s * 128, s * 128 + 128);
                assertTrue(first == 0 || second == 0, "pair " + p + ", slice " + s + ": one row is zero");
                int kept = first == 0 ? 2 * p + 1 : 2 * p;
                assertKeepsTheLargestTwoOfFour(w, pruned, kept, cols, s * 128, s * 128 + 128);
            }
        }
    }

    @Test
    void packThenDecompressGivesThePrunedMatrix() {
        int rows = 8;
        int cols = 256;
        float[] pruned = VectorSparse.pruneMagnitude(gaussian(rows, cols, 11), rows, cols);
        VectorSparse.Packed packed = VectorSparse.pack(pruned, rows, cols);
        assertEquals(2, packed.slices());
        assertEquals(rows / 2 * 2, packed.keep().length);
        assertEquals(rows / 2, packed.condensed().rows());
        assertEquals(cols, packed.condensed().cols());
        assertArrayEquals(pruned, VectorSparse.decompress(packed));
    }

    @Test
    void aPartialLastSliceKeepsItsOwnRowChoice() {
        int rows = 4;
        int cols = 160;   // slices 0..127 and 128..159
        float[] w = gaussian(rows, cols, 5);
        float[] pruned = VectorSparse.pruneMagnitude(w, rows, cols);
        assertEquals(rows * cols / 4, nonZeros(pruned));
        VectorSparse.Packed packed = VectorSparse.pack(pruned, rows, cols);
        assertEquals(2, packed.slices());
        assertArrayEquals(pruned, VectorSparse.decompress(packed));

        float[] hand = new float[2 * cols];
        hand[0] = 1f;               // slice 0: row 0
        hand[cols + 128 + 2] = 2f;  // slice 1: row 1
        VectorSparse.Packed p = VectorSparse.pack(hand, 2, cols);
        assertArrayEquals(new byte[] {0, 1}, p.keep());
        assertArrayEquals(hand, VectorSparse.decompress(p));
    }

    @Test
    void theTwoFourFormDecompressesToTheSameMatrix() {
        int rows = 6;
        int cols = 192;
        float[] pruned = VectorSparse.pruneMagnitude(gaussian(rows, cols, 13), rows, cols);
        VectorSparse.Packed packed = VectorSparse.pack(pruned, rows, cols);
        Sparse24.Packed asTwoFour = VectorSparse.toSparse24(packed);
        assertEquals(rows, asTwoFour.rows());
        assertEquals(cols, asTwoFour.cols());
        assertArrayEquals(pruned, Sparse24.decompress(asTwoFour));
    }

    /**
     * Row 0 keeps 3 + 0.1 per group of 4 and row 1 keeps 1 + 1: row 0 wins though row 1's whole magnitude (4 per
     * group) is larger; in the second slice the rows swap.
     */
    @Test
    void magnitudeKeepsTheRowWhoseKeptWeightsAreLarger() {
        int cols = 256;
        float[] w = new float[2 * cols];
        for (int g = 0; g < cols; g += 4) {
            float[] strongFew = {3f, 0.1f, 0f, 0f};
            float[] manySmall = {1f, -1f, 1f, -1f};
            boolean firstSlice = g < 128;
            for (int j = 0; j < 4; j++) {
                w[g + j] = (firstSlice ? strongFew : manySmall)[j];
                w[cols + g + j] = (firstSlice ? manySmall : strongFew)[j];
            }
        }
        float[] pruned = VectorSparse.pruneMagnitude(w, 2, cols);
        VectorSparse.Packed packed = VectorSparse.pack(pruned, 2, cols);
        assertArrayEquals(new byte[] {0, 1}, packed.keep());
        assertEquals(3f, pruned[0]);
        assertEquals(0.1f, pruned[1]);
        assertEquals(0f, pruned[cols]);
        assertEquals(3f, pruned[cols + 128]);
        assertEquals(0f, pruned[128]);
    }

    /** Wanda weighs each column by its input norm: a row that is small where inputs are large loses. */
    @Test
    void wandaWeighsTheRowChoiceByInputNorms() {
        int cols = 128;
        float[] w = new float[2 * cols];
        double[] norms = new double[cols];
        for (int c = 0; c < cols; c++) {
            boolean loudInput = c % 4 == 3;
            norms[c] = loudInput ? 10 : 1;
            w[c] = loudInput ? 0.5f : 2f;   // row 0: large where inputs are quiet
            w[cols + c] = 1f;               // row 1: even
        }
        assertArrayEquals(new byte[] {0}, VectorSparse.pack(VectorSparse.pruneMagnitude(w, 2, cols), 2, cols).keep());
        assertArrayEquals(new byte[] {1},
                VectorSparse.pack(VectorSparse.pruneWanda(w, 2, cols, norms), 2, cols).keep());
    }

    @Test
    void packRefusesBothRowsOfAPairInOneSlice() {
        int cols = 256;
        float[] w = new float[4 * cols];
        w[2 * cols + 130] = 1f;
        w[3 * cols + 200] = 1f;
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> VectorSparse.pack(w, 4, cols));
        assertTrue(e.getMessage().contains("rows 2 and 3") && e.getMessage().contains("columns 128..255"),
                e.getMessage());
    }

    @Test
    void packRefusesAKeptRowThatIsNotTwoOfFourNamingTheOriginalRow() {
        int cols = 128;
        float[] w = new float[4 * cols];
        w[3 * cols + 4] = 1f;
        w[3 * cols + 5] = 1f;
        w[3 * cols + 6] = 1f;
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> VectorSparse.pack(w, 4, cols));
        assertTrue(e.getMessage().contains("row 3, columns 4..7"), e.getMessage());
    }

    @Test
    void shapesAndRowChoicesAreChecked() {
        assertThrows(IllegalArgumentException.class, () -> VectorSparse.pruneMagnitude(new float[3 * 128], 3, 128));
        assertThrows(IllegalArgumentException.class, () -> VectorSparse.pruneMagnitude(new float[2 * 100], 2, 100));
        Sparse24.Packed condensed = Sparse24.pack(new float[128], 1, 128);
        assertThrows(IllegalArgumentException.class,
                () -> new VectorSparse.Packed(2, 128, new byte[] {2}, condensed), "a row choice is 0 or 1");
        assertThrows(IllegalArgumentException.class,
                () -> new VectorSparse.Packed(2, 128, new byte[] {0, 0}, condensed), "one choice per pair and slice");
        assertThrows(IllegalArgumentException.class,
                () -> new VectorSparse.Packed(4, 128, new byte[] {0, 0}, condensed), "condensed rows: half the rows");
    }

    private static float[] gaussian(int rows, int cols, long seed) {
        Random random = new Random(seed);
        float[] w = new float[rows * cols];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) random.nextGaussian();
        }
        return w;
    }

    private static int nonZeros(float[] w) {
        int n = 0;
        for (float v : w) {
            n += v != 0f ? 1 : 0;
        }
        return n;
    }

    private static int nonZeros(float[] w, int row, int cols, int from, int to) {
        int n = 0;
        for (int c = from; c < Math.min(to, cols); c++) {
            n += w[row * cols + c] != 0f ? 1 : 0;
        }
        return n;
    }

    private static void assertKeepsTheLargestTwoOfFour(float[] w, float[] pruned, int row, int cols, int from, int to) {
        for (int g = row * cols + from; g < row * cols + Math.min(to, cols); g += 4) {
            int kept = 0;
            for (int j = 0; j < 4; j++) {
                if (pruned[g + j] == 0f) {
                    continue;
                }
                kept++;
                assertEquals(w[g + j], pruned[g + j], "kept weights keep their value");
                int larger = 0;
                for (int o = 0; o < 4; o++) {
                    larger += Math.abs(w[g + o]) > Math.abs(w[g + j]) ? 1 : 0;
                }
                assertTrue(larger <= 1, "row " + row + ": kept value is among the two largest of its group");
            }
            assertEquals(2, kept, "row " + row + " keeps 2 of 4");
        }
    }
}
