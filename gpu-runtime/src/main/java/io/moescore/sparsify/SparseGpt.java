package io.moescore.sparsify;

import io.moescore.sparse.SparsityPattern;
import io.moescore.sparse.VectorSparse;

/**
 * SparseGPT 2:4 (Frantar &amp; Alistarh 2023): prunes a weight W [rows, cols] column by column, choosing in each
 * group of 4 columns the 2 weights per row whose removal costs least under the layer's Hessian H = X^T X, and
 * spreading each removed weight's error onto the columns not yet processed (the optimal brain surgeon update),
 * so that W' X^T stays close to W X^T. fp64 throughout; {@code gpu-runtime/src/test/python/sparsegpt_reference.py}
 * is the independent reference it is tested against.
 * <p>
 * The same loop prunes 128:2:8 ({@link VectorSparse}): a block of columns is one 128-column slice, and at its start
 * each row pair keeps the row whose 2:4 choice keeps more saliency (w^2 / d^2 of the weights as earlier blocks'
 * updates left them); the other row's weights in the slice are then removed column by column like any other, their
 * errors spread onto the columns not yet processed.
 */
public final class SparseGpt {
    /** Dampening added to H's diagonal, as a fraction of its mean diagonal (the paper's default). */
    public static final double PERCENT_DAMP = 0.01;
    /** Columns whose errors are applied to the rest of W together (lazy batch updates). */
    public static final int BLOCK_SIZE = 128;

    private SparseGpt() {
    }

    /**
     * W pruned 2:4 along its input dimension (at least 2 zeros in every group of 4 columns of a row).
     *
     * @param w       [rows, cols] row-major, not modified
     * @param hessian [cols, cols] row-major X^T X over the calibration inputs, not modified
     */
    public static double[] prune24(double[] w, int rows, int cols, double[] hessian) {
        return prune(w, rows, cols, hessian, SparsityPattern.TWO_FOUR);
    }

    /**
     * W pruned to a pattern along its input dimension: 2:4, or 128:2:8 (rows even).
     *
     * @param w       [rows, cols] row-major, not modified
     * @param hessian [cols, cols] row-major X^T X over the calibration inputs, not modified
     */
    public static double[] prune(double[] w, int rows, int cols, double[] hessian, SparsityPattern pattern) {
        boolean vector = pattern == SparsityPattern.VECTOR_128_2_8;
        if (cols % 4 != 0 || w.length != (long) rows * cols || hessian.length != (long) cols * cols
                || (vector && rows % 2 != 0)) {
            throw new IllegalArgumentException("SparseGPT " + pattern.userName() + ": weight of " + w.length
                    + " values as " + rows + "x" + cols + " with a Hessian of " + hessian.length + " values (needs "
                    + cols + "x" + cols + ", cols a multiple of 4" + (vector ? ", rows even)" : ")"));
        }
        double[] weight = w.clone();
        double[] h = hessian.clone();
        double meanDiagonal = 0;
        for (int j = 0; j < cols; j++) {
            if (h[j * cols + j] == 0) {
                // a feature no calibration input used: nothing constrains its weights, so they are dropped
                h[j * cols + j] = 1;
                for (int r = 0; r < rows; r++) {
                    weight[r * cols + j] = 0;
                }
            }
            meanDiagonal += h[j * cols + j] / cols;
        }
        for (int j = 0; j < cols; j++) {
            h[j * cols + j] += PERCENT_DAMP * meanDiagonal;
        }
        double[] u = upperCholeskyOfInverse(h, cols);
        for (int block = 0; block < cols; block += BLOCK_SIZE) {
            int end = Math.min(block + BLOCK_SIZE, cols);
            pruneBlock(weight, rows, cols, u, block, end, vector);
        }
        return weight;
    }

    /** {@link #prune24(double[], int, int, double[])} of an fp32 weight, rounded back to fp32. */
    public static float[] prune24(float[] w, int rows, int cols, double[] hessian) {
        return prune(w, rows, cols, hessian, SparsityPattern.TWO_FOUR);
    }

    /** {@link #prune(double[], int, int, double[], SparsityPattern)} of an fp32 weight, rounded back to fp32. */
    public static float[] prune(float[] w, int rows, int cols, double[] hessian, SparsityPattern pattern) {
        double[] wide = new double[w.length];
        for (int i = 0; i < w.length; i++) {
            wide[i] = w[i];
        }
        double[] pruned = prune(wide, rows, cols, hessian, pattern);
        float[] out = new float[pruned.length];
        for (int i = 0; i < pruned.length; i++) {
            out[i] = (float) pruned[i];
        }
        return out;
    }

    /**
     * Prunes columns [from, to), updating the block in place and the columns after it once at the end; with
     * {@code vector} the block is a 128:2:8 slice and one row of each pair loses all of it.
     */
    private static void pruneBlock(double[] weight, int rows, int cols, double[] u, int from, int to,
                                   boolean vector) {
        int width = to - from;
        double[] error = new double[rows * width];
        boolean[] prune = new boolean[rows * 4];
        boolean[] dropped = vector ? droppedRows(weight, rows, cols, u, from, to) : new boolean[rows];
        for (int c = from; c < to; c++) {
            double d = u[c * cols + c];
            if ((c - from) % 4 == 0) {
                choosePrunedPairs(weight, rows, cols, u, c, prune);
            }
            for (int r = 0; r < rows; r++) {
                double value = weight[r * cols + c];
                if (!dropped[r] && !prune[r * 4 + (c - from) % 4]) {
                    continue;
                }
                double e = value / d;
                error[r * width + (c - from)] = e;
                weight[r * cols + c] = 0;
                for (int k = c + 1; k < to; k++) {
                    weight[r * cols + k] -= e * u[c * cols + k];
                }
            }
        }
        for (int r = 0; r < rows; r++) {
            for (int k = to; k < cols; k++) {
                double sum = 0;
                for (int c = from; c < to; c++) {
                    sum += error[r * width + (c - from)] * u[c * cols + k];
                }
                weight[r * cols + k] -= sum;
            }
        }
    }

    /**
     * Per row, whether it loses the whole slice [from, to): of each pair, the row whose 2:4 choice would keep less
     * saliency (w^2 / d^2) over the slice. Either way both rows' saliencies are lost except what the kept row
     * keeps, so keeping the row that keeps more costs least. Ties drop the second row ({@link VectorSparse#prune}
     * keeps the first).
     */
    private static boolean[] droppedRows(double[] weight, int rows, int cols, double[] u, int from, int to) {
        if (BLOCK_SIZE != VectorSparse.VECTOR) {
            throw new IllegalStateException("128:2:8 slices must be SparseGPT blocks");
        }
        double[] keptIfChosen = new double[rows];  // the saliency a row keeps when it is the pair's kept row
        boolean[] prune = new boolean[rows * 4];
        for (int c = from; c < to; c += 4) {
            choosePrunedPairs(weight, rows, cols, u, c, prune);
            for (int r = 0; r < rows; r++) {
                for (int j = 0; j < 4; j++) {
                    if (!prune[r * 4 + j]) {
                        double value = weight[r * cols + c + j];
                        double d = u[(c + j) * cols + c + j];
                        keptIfChosen[r] += value * value / (d * d);
                    }
                }
            }
        }
        boolean[] dropped = new boolean[rows];
        for (int p = 0; p < rows / 2; p++) {
            boolean dropFirst = keptIfChosen[2 * p + 1] > keptIfChosen[2 * p];
            dropped[dropFirst ? 2 * p : 2 * p + 1] = true;
        }
        return dropped;
    }

    /** Per row, the 2 of columns [c, c+4) with the smallest w^2 / d^2 (ties: the earlier column). */
    private static void choosePrunedPairs(double[] weight, int rows, int cols, double[] u, int c, boolean[] prune) {
        double[] saliency = new double[4];
        for (int r = 0; r < rows; r++) {
            for (int j = 0; j < 4; j++) {
                double value = weight[r * cols + c + j];
                double d = u[(c + j) * cols + c + j];
                saliency[j] = value * value / (d * d);
            }
            int first = 0;
            for (int j = 1; j < 4; j++) {
                if (saliency[j] < saliency[first]) {
                    first = j;
                }
            }
            int second = first == 0 ? 1 : 0;
            for (int j = 0; j < 4; j++) {
                if (j != first && saliency[j] < saliency[second]) {
                    second = j;
                }
            }
            for (int j = 0; j < 4; j++) {
                prune[r * 4 + j] = j == first || j == second;
            }
        }
    }

    /** U upper triangular with U^T U = H^-1, for H symmetric positive definite [n, n]. */
    static double[] upperCholeskyOfInverse(double[] h, int n) {
        double[] lower = cholesky(h, n);
        double[] lowerInverse = invertLower(lower, n);
        // H^-1 = L^-T L^-1
        double[] inverse = new double[n * n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j <= i; j++) {
                double sum = 0;
                for (int k = i; k < n; k++) {
                    sum += lowerInverse[k * n + i] * lowerInverse[k * n + j];
                }
                inverse[i * n + j] = sum;
                inverse[j * n + i] = sum;
            }
        }
        double[] l = cholesky(inverse, n);
        double[] upper = new double[n * n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j <= i; j++) {
                upper[j * n + i] = l[i * n + j];
            }
        }
        return upper;
    }

    /** L lower triangular with L L^T = a. */
    private static double[] cholesky(double[] a, int n) {
        double[] l = new double[n * n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j <= i; j++) {
                double sum = a[i * n + j];
                for (int k = 0; k < j; k++) {
                    sum -= l[i * n + k] * l[j * n + k];
                }
                if (i == j) {
                    if (!(sum > 0)) {
                        throw new IllegalArgumentException("SparseGPT: the dampened Hessian is not positive definite"
                                + " (pivot " + i + " is " + sum + ")");
                    }
                    l[i * n + i] = Math.sqrt(sum);
                } else {
                    l[i * n + j] = sum / l[j * n + j];
                }
            }
        }
        return l;
    }

    private static double[] invertLower(double[] l, int n) {
        double[] inv = new double[n * n];
        for (int j = 0; j < n; j++) {
            inv[j * n + j] = 1 / l[j * n + j];
            for (int i = j + 1; i < n; i++) {
                double sum = 0;
                for (int k = j; k < i; k++) {
                    sum -= l[i * n + k] * inv[k * n + j];
                }
                inv[i * n + j] = sum / l[i * n + i];
            }
        }
        return inv;
    }
}
