package io.moescore.sparsify;

import java.util.stream.IntStream;

/**
 * A sum of Gram matrices A^T A [n, n] that comes out the same to the bit whatever order and grouping its parts are
 * added in: each part (one calibration sequence's A^T A, summed in fp64 over its rows in their order) is rounded to
 * a multiple of 2^-64 and added exactly, as a 128-bit two's-complement fixed-point number (two longs per entry, high
 * word first). So a Hessian summed over 1 or 8 partitions, by the single-process tool or across executors, gives
 * SparseGPT the same input. Only the upper triangle is kept, packed row by row (row i holds columns i..n-1, from
 * entry {@link #rowOffset}): n (n + 1) / 2 entries of 16 bytes, about the 8 n^2 bytes of a plain fp64 matrix.
 *
 * <p>Range: entries up to 2^63 in magnitude (a sum beyond fails, naming the limit); resolution 2^-64 (5e-20), far
 * below what SparseGPT's dampening (1% of the mean diagonal) lets matter.
 */
public final class ExactGram {
    /** Fraction bits of the fixed-point entries. */
    static final int FRACTION_BITS = 64;

    private ExactGram() {
    }

    /** Entries of the packed upper triangle of an [n, n] matrix. */
    public static int entries(int n) {
        return Math.toIntExact((long) n * (n + 1) / 2);
    }

    /** Where row {@code row} (its columns row..n-1) starts among the packed entries. */
    public static int rowOffset(int row, int n) {
        return Math.toIntExact((long) row * n - (long) row * (row - 1) / 2);
    }

    /** A zero sum of [n, n] matrices: 2 longs per packed entry. */
    public static long[] zeros(int n) {
        return new long[2 * entries(n)];
    }

    /** Bytes of a sum of [n, n] matrices. */
    public static long bytes(int n) {
        return 16L * entries(n);
    }

    /**
     * sums += a^T a for a [rows, n] (row-major): each entry summed in fp64 over the rows in order, then added
     * exactly. Rows of the result in parallel (each entry by one thread).
     */
    static void addGram(long[] sums, float[] a, int rows, int n) {
        double[] byColumn = new double[n * rows];
        for (int t = 0; t < rows; t++) {
            for (int c = 0; c < n; c++) {
                byColumn[c * rows + t] = a[t * n + c];
            }
        }
        IntStream.range(0, n).parallel().forEach(i -> {
            int entry = rowOffset(i, n);
            for (int j = i; j < n; j++, entry++) {
                double sum = 0;
                for (int t = 0; t < rows; t++) {
                    sum += byColumn[i * rows + t] * byColumn[j * rows + t];
                }
                add(sums, entry, sum);
            }
        });
    }

    /** sums += x [n] elementwise (exactly, as {@link #addGram}): a diagonal-only sum, e.g. of squares. */
    static void addVector(long[] sums, double[] x) {
        for (int i = 0; i < x.length; i++) {
            add(sums, i, x[i]);
        }
    }

    /** Adds a part already in this form, whose entries start at packed entry {@code firstEntry} of {@code sums}. */
    public static void add(long[] sums, int firstEntry, long[] part) {
        if (part.length % 2 != 0 || 2L * firstEntry + part.length > sums.length) {
            throw new IllegalArgumentException("a part of " + part.length / 2 + " entries from entry " + firstEntry
                    + " does not fit a sum of " + sums.length / 2);
        }
        for (int k = 0; k < part.length; k += 2) {
            addFixed(sums, firstEntry + k / 2, part[k], part[k + 1]);
        }
    }

    /** The full symmetric [n, n] matrix in fp64. */
    public static double[] toSymmetric(long[] sums, int n) {
        if (sums.length != 2L * entries(n)) {
            throw new IllegalArgumentException("a sum of " + sums.length / 2 + " entries is not the upper triangle of "
                    + n + " x " + n);
        }
        double[] out = new double[n * n];
        IntStream.range(0, n).parallel().forEach(i -> {
            int entry = rowOffset(i, n);
            for (int j = i; j < n; j++, entry++) {
                double v = value(sums, entry);
                out[i * n + j] = v;
                out[j * n + i] = v;
            }
        });
        return out;
    }

    /** Entries [0, n) as fp64 (a diagonal-only sum). */
    static double[] toVector(long[] sums, int n) {
        double[] out = new double[n];
        for (int i = 0; i < n; i++) {
            out[i] = value(sums, i);
        }
        return out;
    }

    /** Adds v, rounded to a multiple of 2^-64 (halves away from zero), to entry {@code entry}. */
    static void add(long[] sums, int entry, double v) {
        if (v == 0) {
            return;
        }
        long bits = Double.doubleToRawLongBits(v);
        int exponent = (int) ((bits >>> 52) & 0x7ff);
        if (exponent == 0x7ff) {
            throw new ArithmeticException("a Gram entry is " + v + ": calibration inputs must be finite");
        }
        long mantissa = bits & 0xfffffffffffffL;
        if (exponent == 0) {
            exponent = 1;   // subnormal
        } else {
            mantissa |= 1L << 52;
        }
        // |v| = mantissa x 2^(exponent - 1075); as fixed point: mantissa x 2^shift
        int shift = exponent - 1075 + FRACTION_BITS;
        long hi;
        long lo;
        if (shift >= 64) {
            if (shift - 64 > 63 - 53) {   // mantissa < 2^53: the high word stays below 2^63
                throw overflow();
            }
            hi = mantissa << (shift - 64);
            lo = 0;
        } else if (shift >= 0) {
            lo = mantissa << shift;
            hi = shift == 0 ? 0 : mantissa >>> (64 - shift);
        } else if (shift > -54) {
            lo = (mantissa + (1L << (-shift - 1))) >>> -shift;
            hi = 0;
        } else {
            return;   // below half of 2^-64: rounds to zero
        }
        if (v < 0) {
            hi = lo == 0 ? -hi : ~hi;
            lo = -lo;
        }
        addFixed(sums, entry, hi, lo);
    }

    private static void addFixed(long[] sums, int entry, long hi, long lo) {
        int k = 2 * entry;
        long low = sums[k + 1] + lo;
        long carry = Long.compareUnsigned(low, lo) < 0 ? 1 : 0;
        try {
            sums[k] = Math.addExact(Math.addExact(sums[k], hi), carry);
        } catch (ArithmeticException e) {
            throw overflow();
        }
        sums[k + 1] = low;
    }

    /** Entry {@code entry} as the nearest fp64 (to within a rounding or two). */
    static double value(long[] sums, int entry) {
        long hi = sums[2 * entry];
        long lo = sums[2 * entry + 1];
        boolean negative = hi < 0;
        if (negative) {
            hi = lo == 0 ? -hi : ~hi;
            lo = -lo;
        }
        double magnitude = hi + unsigned(lo) * 0x1p-64;
        return negative ? -magnitude : magnitude;
    }

    private static double unsigned(long v) {
        return v >= 0 ? v : ((v >>> 1) | (v & 1)) * 2.0;
    }

    private static ArithmeticException overflow() {
        return new ArithmeticException("a Gram entry exceeds 2^63 (calibration inputs far too large)");
    }
}
