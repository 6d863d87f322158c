package io.moescore.placement;

import java.util.Arrays;

/**
 * Load statistics of one MoE layer over a trace: how unevenly tokens spread over its experts and how fast that
 * changes. Over the whole trace and per window of {@code window} consecutive steps:
 * <ul>
 *   <li>max/mean: the busiest expert's tokens over the mean expert's (1: perfectly even; E: one expert takes all);</li>
 *   <li>Gini coefficient of the experts' tokens (0: even, (E-1)/E: one expert takes all);</li>
 *   <li>drift between consecutive windows: the total variation distance between their load shares,
 *       {@code 0.5 * sum_e |p_e - q_e|} (0: the same shares, 1: disjoint experts).</li>
 * </ul>
 *
 * @param windowMaxOverMean max/mean of each window, in step order
 * @param windowDrift       drift from window w-1 to window w (one fewer than the windows)
 */
public record LoadStats(int layer, long tokens, int steps, int window, double maxOverMean, double gini,
                        double[] windowMaxOverMean, double[] windowDrift) {
    /** The statistics of {@code series} in windows of {@code window} steps (a last, shorter window is dropped). */
    public static LoadStats of(LoadSeries series, int window) {
        if (window < 1) {
            throw new IllegalArgumentException("window must be at least 1 step, got " + window);
        }
        double[] total = series.total();
        int windows = series.numSteps() / window;
        double[] maxMean = new double[windows];
        double[] drift = new double[Math.max(0, windows - 1)];
        double[] previous = null;
        for (int w = 0; w < windows; w++) {
            double[] loads = series.window(w * window, (w + 1) * window);
            maxMean[w] = maxOverMean(loads);
            if (previous != null) {
                drift[w - 1] = drift(previous, loads);
            }
            previous = loads;
        }
        return new LoadStats(series.layer(), (long) Arrays.stream(total).sum(), series.numSteps(), window,
                maxOverMean(total), gini(total), maxMean, drift);
    }

    /** The mean of the drifts between consecutive windows (NaN with fewer than two windows). */
    public double meanDrift() {
        return Arrays.stream(windowDrift).average().orElse(Double.NaN);
    }

    public double maxDrift() {
        return Arrays.stream(windowDrift).max().orElse(Double.NaN);
    }

    /** The largest value over its mean (NaN where every value is 0). */
    public static double maxOverMean(double[] values) {
        double sum = 0;
        double max = 0;
        for (double v : values) {
            sum += v;
            max = Math.max(max, v);
        }
        return sum > 0 ? max * values.length / sum : Double.NaN;
    }

    /** The Gini coefficient of non-negative values (NaN where every value is 0). */
    public static double gini(double[] values) {
        double[] v = values.clone();
        Arrays.sort(v);
        double sum = 0;
        double weighted = 0;
        for (int i = 0; i < v.length; i++) {
            sum += v[i];
            weighted += (i + 1) * v[i];
        }
        int n = v.length;
        return sum > 0 ? (2 * weighted) / (n * sum) - (n + 1.0) / n : Double.NaN;
    }

    /** Total variation distance between the shares of two load vectors (NaN where either is all 0). */
    public static double drift(double[] a, double[] b) {
        double sa = Arrays.stream(a).sum();
        double sb = Arrays.stream(b).sum();
        if (!(sa > 0) || !(sb > 0)) {
            return Double.NaN;
        }
        double d = 0;
        for (int e = 0; e < a.length; e++) {
            d += Math.abs(a[e] / sa - b[e] / sb);
        }
        return d / 2;
    }
}
