package io.moescore.placement;

/**
 * One MoE layer's expert loads over time: per step (a distinct batch id of the trace, in increasing order) the
 * tokens each expert received, summed over executors, devices and partitions.
 *
 * @param steps  the batch ids, increasing
 * @param counts {@code counts[s][e]}: tokens expert e received at step s
 */
public record LoadSeries(int layer, long[] steps, long[][] counts) {
    public LoadSeries {
        if (steps.length != counts.length) {
            throw new IllegalArgumentException("layer " + layer + ": " + steps.length + " steps but "
                    + counts.length + " rows of counts");
        }
    }

    public int numSteps() {
        return steps.length;
    }

    public int numExperts() {
        return counts.length == 0 ? 0 : counts[0].length;
    }

    /** Each expert's tokens summed over steps {@code [from, to)} (step ordinals, not batch ids). */
    public double[] window(int from, int to) {
        if (from < 0 || to > steps.length || from >= to) {
            throw new IllegalArgumentException("layer " + layer + ": window [" + from + ", " + to + ") of "
                    + steps.length + " steps");
        }
        double[] sum = new double[numExperts()];
        for (int s = from; s < to; s++) {
            for (int e = 0; e < sum.length; e++) {
                sum[e] += counts[s][e];
            }
        }
        return sum;
    }

    /** Every step's loads summed. */
    public double[] total() {
        return window(0, steps.length);
    }
}
