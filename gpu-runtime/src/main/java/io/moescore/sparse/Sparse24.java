package io.moescore.sparse;

/**
 * 2:4 structured sparsity along a weight's input dimension: in every group of 4 consecutive columns of a row,
 * 2 values are kept. {@link Packed} is the layout the sparse kernels read (sparse24.cu): the kept values of each
 * row in column order (half the columns), and per row and 32 columns one 32-bit word of 8 nibbles, group j at
 * bits 4j..4j+3 holding the kept positions i0 &lt; i1 as {@code i0 | i1 << 2}: the metadata word mma.sp takes.
 */
public final class Sparse24 {
    private Sparse24() {
    }

    /** A packed 2:4 matrix: values [rows, cols/2] as fp32 (bf16-representable after upload), meta [rows, cols/32]. */
    public record Packed(int rows, int cols, float[] values, int[] meta) {
        public int metaPerRow() {
            return cols / 32;
        }
    }

    /** Zeroes, in each group of 4 of every row, the 2 entries with the lowest score (ties: the later ones). */
    public static float[] prune(float[] w, int rows, int cols, float[] score) {
        checkShape(rows, cols);
        float[] out = w.clone();
        for (int i = 0; i < rows * cols; i += 4) {
            int[] keep = topTwo(score, i);
            for (int j = 0; j < 4; j++) {
                if (j != keep[0] && j != keep[1]) {
                    out[i + j] = 0f;
                }
            }
        }
        return out;
    }

    /** Magnitude pruning: score = |w|. */
    public static float[] pruneMagnitude(float[] w, int rows, int cols) {
        return prune(w, rows, cols, magnitudeScores(w));
    }

    /** Wanda: score = |w| x the L2 norm of its input feature over calibration inputs (one norm per column). */
    public static float[] pruneWanda(float[] w, int rows, int cols, double[] inputNorms) {
        return prune(w, rows, cols, wandaScores(w, rows, cols, inputNorms));
    }

    /** |w|, the score of magnitude pruning (any pattern). */
    static float[] magnitudeScores(float[] w) {
        float[] score = new float[w.length];
        for (int i = 0; i < w.length; i++) {
            score[i] = Math.abs(w[i]);
        }
        return score;
    }

    /** |w| x the norm of its input column, the score of Wanda pruning (any pattern). */
    static float[] wandaScores(float[] w, int rows, int cols, double[] inputNorms) {
        float[] score = new float[w.length];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                score[r * cols + c] = (float) (Math.abs(w[r * cols + c]) * inputNorms[c]);
            }
        }
        return score;
    }

    private static int[] topTwo(float[] score, int at) {
        int a = 0;
        for (int j = 1; j < 4; j++) {
            if (score[at + j] > score[at + a]) {
                a = j;
            }
        }
        int b = a == 0 ? 1 : 0;
        for (int j = 0; j < 4; j++) {
            if (j != a && score[at + j] > score[at + b]) {
                b = j;
            }
        }
        return a < b ? new int[] {a, b} : new int[] {b, a};
    }

    /** Packs a matrix that is already 2:4 sparse (at most 2 non-zeros per group; where fewer, zeros fill in). */
    public static Packed pack(float[] w, int rows, int cols) {
        checkShape(rows, cols);
        float[] magnitude = new float[w.length];
        for (int i = 0; i < w.length; i++) {
            magnitude[i] = w[i] != 0f ? 1f + Math.abs(w[i]) : 0f;
        }
        float[] values = new float[rows * cols / 2];
        int[] meta = new int[rows * cols / 32];
        for (int r = 0; r < rows; r++) {
            for (int g = 0; g < cols / 4; g++) {
                int at = r * cols + g * 4;
                int nonZero = 0;
                for (int j = 0; j < 4; j++) {
                    nonZero += w[at + j] != 0f ? 1 : 0;
                }
                if (nonZero > 2) {
                    throw new IllegalArgumentException("row " + r + ", columns " + g * 4 + ".." + (g * 4 + 3)
                            + " hold " + nonZero + " non-zeros: not 2:4 sparse");
                }
                int[] keep = topTwo(magnitude, at);
                values[(r * cols + g * 4) / 2] = w[at + keep[0]];
                values[(r * cols + g * 4) / 2 + 1] = w[at + keep[1]];
                int nibble = keep[0] | keep[1] << 2;
                meta[r * (cols / 32) + g / 8] |= nibble << (4 * (g % 8));
            }
        }
        return new Packed(rows, cols, values, meta);
    }

    /** The dense matrix a packed one stands for (the CPU backend's reference). */
    public static float[] decompress(Packed p) {
        float[] w = new float[p.rows() * p.cols()];
        for (int r = 0; r < p.rows(); r++) {
            for (int g = 0; g < p.cols() / 4; g++) {
                int nibble = (p.meta()[r * p.metaPerRow() + g / 8] >>> (4 * (g % 8))) & 0xf;
                int base = r * p.cols() + g * 4;
                w[base + (nibble & 3)] += p.values()[base / 2];
                w[base + (nibble >>> 2)] += p.values()[base / 2 + 1];
            }
        }
        return w;
    }

    private static void checkShape(int rows, int cols) {
        if (cols % 32 != 0) {
            throw new IllegalArgumentException("2:4 packing needs a multiple of 32 input columns, got " + cols);
        }
    }
}
