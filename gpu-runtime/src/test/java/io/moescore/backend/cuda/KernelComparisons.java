package io.moescore.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Comparing kernel results with the CPU reference in the GPU tests: relative errors, and failures that say where
 * the two differ (index, row, column, both values, the tolerance) and the seed that repeats the run's random inputs.
 */
final class KernelComparisons {
    /** The seed of this run's random inputs; {@code -Dmoescore.test.seed=N} repeats a run. */
    static final long SEED = Long.getLong("moescore.test.seed", System.nanoTime());

    private KernelComparisons() {
    }

    static double relativeError(float[] ref, float[] got) {
        assertEquals(ref.length, got.length);
        double num = 0;
        double den = 0;
        for (int i = 0; i < ref.length; i++) {
            double d = (double) got[i] - ref[i];
            if (!Double.isFinite(got[i])) {
                return Double.POSITIVE_INFINITY;
            }
            num += d * d;
            den += (double) ref[i] * ref[i];
        }
        return Math.sqrt(num / Math.max(den, 1e-30));
    }

    /**
     * The relative error of {@code got} (a GPU result, rows of {@code cols}) against {@code ref} (the CPU's), after
     * asserting it is within tolerance; a failure says where they differ and the seed that repeats it.
     */
    static double assertValuesClose(float[] ref, float[] got, int cols, double tolerance, String what) {
        double err = relativeError(ref, got);
        System.out.printf("%-28s relative error %.2e%n", what, err);
        if (!(err <= tolerance)) {
            throw new AssertionError(what + ": relative error " + err + " > " + tolerance + "; "
                    + whereTheyDiffer(ref, got, cols, tolerance) + "; seed " + SEED);
        }
        return err;
    }

    /**
     * The first element off by more than tolerance x rms(ref) or not finite (one exists when the relative error
     * exceeds the tolerance), and the one farthest off, with their rows, columns and both values.
     */
    static String whereTheyDiffer(float[] ref, float[] got, int cols, double tolerance) {
        double squares = 0;
        for (float r : ref) {
            squares += (double) r * r;
        }
        double bound = tolerance * Math.sqrt(squares / Math.max(1, ref.length));
        int first = -1;
        int farthest = -1;
        double farthestDiff = -1;
        for (int i = 0; i < ref.length; i++) {
            double d = Math.abs((double) got[i] - ref[i]);
            if (first < 0 && !(d <= bound)) {
                first = i;
            }
            if (!(d <= farthestDiff)) {
                farthest = i;
                farthestDiff = d;
            }
        }
        return "first element off by more than " + String.format("%.3g", bound) + " (tolerance x rms of the CPU's): "
                + element(ref, got, cols, first) + "; farthest off: " + element(ref, got, cols, farthest);
    }

    private static String element(float[] ref, float[] got, int cols, int i) {
        return i < 0 ? "none" : "index " + i + " (row " + i / cols + ", column " + i % cols + "): cpu " + ref[i]
                + ", gpu " + got[i];
    }

    /** Per-token log-probs of the first {@code count} tokens within {@code tolerance}; returns the worst difference. */
    static double assertLogProbsClose(float[] ref, float[] got, int count, double tolerance, String what) {
        double worst = 0;
        int first = -1;
        for (int i = 0; i < count; i++) {
            double d = Math.abs(ref[i] - got[i]);
            worst = Math.max(worst, Double.isNaN(d) ? Double.POSITIVE_INFINITY : d);
            if (first < 0 && !(d <= tolerance)) {
                first = i;
            }
        }
        System.out.printf("%s: worst abs error %.2e%n", what, worst);
        if (first >= 0) {
            throw new AssertionError(what + ": log-prob of token " + first + " cpu " + ref[first] + ", gpu "
                    + got[first] + ", off by more than " + tolerance + " (worst " + worst + "); seed " + SEED);
        }
        return worst;
    }
}
