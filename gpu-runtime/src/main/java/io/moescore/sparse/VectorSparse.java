package io.moescore.sparse;

/**
 * Samoyeds' vector-wise format, pattern {@value #PATTERN} (V:N:M: per {@value #VECTOR}-wide slice of the input
 * dimension, 2 of every 8 weights kept, 75% sparsity). Its structure: of each pair of output rows (2p, 2p+1),
 * one row is kept per slice of {@value #VECTOR} input columns (the other is all zero there), and the kept row is
 * 2:4 sparse within the slice. So a matrix [rows, cols] is stored as a condensed 2:4 matrix [rows/2, cols]
 * (condensed row p, slice s = row 2p + keep[p][s] of the original) plus the row choice per (p, s).
 *
 * <p>Such a matrix is also a valid 2:4 matrix (the dropped rows are all-zero groups), which is how backends
 * without a kernel for this format run it: {@link #toSparse24}.
 */
public final class VectorSparse {
    /** The pattern name the sparsify tool and the manifest use. */
    public static final String PATTERN = "128:2:8";
    /** Input columns that share one row choice (the kernels' pipeline stage: one 128-k stage, one choice). */
    public static final int VECTOR = 128;

    private VectorSparse() {
    }

    /**
     * A packed matrix: {@code keep[p * slices() + s]} is 0 or 1, the row of pair p kept in slice s;
     * {@code condensed} the kept rows, [rows/2, cols], 2:4-packed.
     */
    public record Packed(int rows, int cols, byte[] keep, Sparse24.Packed condensed) {
        public Packed {
            checkShape(rows, cols);
            int slices = slices(cols);
            if (keep.length != rows / 2 * slices) {
                throw new IllegalArgumentException("a " + rows + " x " + cols + " " + PATTERN + " matrix has "
                        + rows / 2 * slices + " row choices (" + rows / 2 + " pairs x " + slices + " slices), got "
                        + keep.length);
            }
            for (int i = 0; i < keep.length; i++) {
                if (keep[i] != 0 && keep[i] != 1) {
                    throw new IllegalArgumentException("row choice " + keep[i] + " for pair " + i / slices
                            + ", slice " + i % slices + " is neither 0 nor 1");
                }
            }
            if (condensed.rows() != rows / 2 || condensed.cols() != cols) {
                throw new IllegalArgumentException("the condensed matrix of a " + rows + " x " + cols + " " + PATTERN
                        + " matrix is " + rows / 2 + " x " + cols + ", got " + condensed.rows() + " x "
                        + condensed.cols());
            }
        }

        public int slices() {
            return slices(cols);
        }

        public static int slices(int cols) {
            return (cols + VECTOR - 1) / VECTOR;
        }
    }

    /**
     * Zeroes all but 2 of every 8 weights: in each row pair and slice the row whose 2:4-kept scores sum higher
     * (ties: the first) keeps its 2 best of every 4 (ties: the earlier ones); the other row is zeroed. Scores are
     * non-negative (|w|, or |w| times an input norm).
     */
    public static float[] prune(float[] w, int rows, int cols, float[] score) {
        checkShape(rows, cols);
        float[] kept = Sparse24.prune(w, rows, cols, score);
        float[] keptScore = Sparse24.prune(score, rows, cols, score);   // the same 2:4 choice, whatever w holds
        float[] out = new float[w.length];
        for (int p = 0; p < rows / 2; p++) {
            for (int s = 0; s < Packed.slices(cols); s++) {
                int from = s * VECTOR;
                int to = Math.min(cols, from + VECTOR);
                double first = 0;
                double second = 0;
                for (int c = from; c < to; c++) {
                    first += keptScore[2 * p * cols + c];
                    second += keptScore[(2 * p + 1) * cols + c];
                }
                int row = second > first ? 2 * p + 1 : 2 * p;
                System.arraycopy(kept, row * cols + from, out, row * cols + from, to - from);
            }
        }
        return out;
    }

    /** Magnitude pruning: score = |w|. */
    public static float[] pruneMagnitude(float[] w, int rows, int cols) {
        return prune(w, rows, cols, Sparse24.magnitudeScores(w));
    }

    /** Wanda: score = |w| x the L2 norm of its input feature over calibration inputs (one norm per column). */
    public static float[] pruneWanda(float[] w, int rows, int cols, double[] inputNorms) {
        return prune(w, rows, cols, Sparse24.wandaScores(w, rows, cols, inputNorms));
    }

    /**
     * Packs a matrix that already has the pattern: in each row pair and slice at most one row holds non-zeros,
     * and it is 2:4 sparse there (where both rows are zero, the first is chosen).
     */
    public static Packed pack(float[] w, int rows, int cols) {
        checkShape(rows, cols);
        int slices = Packed.slices(cols);
        byte[] keep = new byte[rows / 2 * slices];
        float[] condensed = new float[rows / 2 * cols];
        for (int p = 0; p < rows / 2; p++) {
            for (int s = 0; s < slices; s++) {
                int from = s * VECTOR;
                int to = Math.min(cols, from + VECTOR);
                boolean firstUsed = anyNonZero(w, 2 * p * cols + from, to - from);
                boolean secondUsed = anyNonZero(w, (2 * p + 1) * cols + from, to - from);
                if (firstUsed && secondUsed) {
                    throw new IllegalArgumentException("rows " + 2 * p + " and " + (2 * p + 1) + " both hold non-zeros"
                            + " in columns " + from + ".." + (to - 1) + ": not " + PATTERN + " sparse");
                }
                int chosen = secondUsed ? 1 : 0;
                checkTwoOfFour(w, 2 * p + chosen, cols, from, to);
                keep[p * slices + s] = (byte) chosen;
                System.arraycopy(w, (2 * p + chosen) * cols + from, condensed, p * cols + from, to - from);
            }
        }
        return new Packed(rows, cols, keep, Sparse24.pack(condensed, rows / 2, cols));
    }

    /** The dense matrix a packed one stands for (the CPU backend's reference). */
    public static float[] decompress(Packed p) {
        int cols = p.cols();
        float[] condensed = Sparse24.decompress(p.condensed());
        float[] w = new float[p.rows() * cols];
        for (int q = 0; q < p.rows() / 2; q++) {
            for (int s = 0; s < p.slices(); s++) {
                int from = s * VECTOR;
                int row = 2 * q + p.keep()[q * p.slices() + s];
                System.arraycopy(condensed, q * cols + from, w, row * cols + from, Math.min(cols, from + VECTOR) - from);
            }
        }
        return w;
    }

    /** The same matrix in plain 2:4 form, for backends without a kernel for this format. */
    public static Sparse24.Packed toSparse24(Packed p) {
        return Sparse24.pack(decompress(p), p.rows(), p.cols());
    }

    /** Sparse24.pack checks the condensed rows too, but could name only condensed row numbers. */
    private static void checkTwoOfFour(float[] w, int row, int cols, int from, int to) {
        for (int g = from; g < to; g += 4) {
            int nonZero = 0;
            for (int c = g; c < g + 4; c++) {
                nonZero += w[row * cols + c] != 0f ? 1 : 0;
            }
            if (nonZero > 2) {
                throw new IllegalArgumentException("row " + row + ", columns " + g + ".." + (g + 3) + " hold " + nonZero
                        + " non-zeros: not " + PATTERN + " sparse (the kept row is 2:4 within its slice)");
            }
        }
    }

    private static boolean anyNonZero(float[] w, int at, int length) {
        for (int i = at; i < at + length; i++) {
            if (w[i] != 0f) {
                return true;
            }
        }
        return false;
    }

    private static void checkShape(int rows, int cols) {
        if (rows % 2 != 0 || cols % 32 != 0) {
            throw new IllegalArgumentException(PATTERN + " sparsity needs an even number of rows and a multiple of 32"
                    + " input columns, got " + rows + " x " + cols);
        }
    }
}
