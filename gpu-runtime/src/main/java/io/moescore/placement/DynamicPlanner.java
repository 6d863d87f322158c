package io.moescore.placement;

import java.util.Arrays;

/**
 * Re-planning as the load drifts (SmartMoE's online phase): a first placement from the first {@code window} steps;
 * then before every {@code every}-th step a candidate from the last {@code window} steps, adopted only where its
 * predicted gain over the next {@code every} steps (the busiest device's tokens per step it saves on the window)
 * exceeds the cost of the expert copies it moves ({@code moveCost} tokens each: the time one move takes, in the
 * tokens the busiest device would process meanwhile). Measured on the steps after the first window, each placed
 * by a plan made from steps before it, against the static plan (the first placement kept).
 *
 * @param moveCost tokens one expert copy moved costs; 0: moves are free
 */
public record DynamicPlanner(PlacementAlgorithm algorithm, PlacementLimits limits, int window, int every,
                             double moveCost) {
    public DynamicPlanner {
        if (window < 1 || every < 1) {
            throw new IllegalArgumentException("window and every must be at least 1 step, got " + window + " and "
                    + every);
        }
        if (!(moveCost >= 0)) {
            throw new IllegalArgumentException("move cost must be 0 or more, got " + moveCost);
        }
    }

    /**
     * What re-planning gave on one layer. Costs are the busiest device's tokens summed over the evaluated steps
     * (the layer's time, in tokens), plus moves times the move cost for the dynamic plan.
     *
     * @param dynamicMaxOverMean per evaluated step, max/mean device load under the dynamic plan
     * @param staticMaxOverMean  the same under the static plan
     */
    public record Result(int layer, int steps, int replans, int adopted, int moves, double dynamicCost,
                         double staticCost, double[] dynamicMaxOverMean, double[] staticMaxOverMean) {
        /** Static cost over dynamic cost: above 1, re-planning paid off. */
        public double gain() {
            return staticCost / dynamicCost;
        }
    }

    /** Runs over a layer's steps; needs more than {@code window} steps. */
    public Result run(LoadSeries series) {
        int steps = series.numSteps();
        if (steps <= window) {
            throw new IllegalArgumentException("layer " + series.layer() + " has " + steps + " steps: re-planning "
                    + "from windows of " + window + " needs more");
        }
        int n = limits.devices();
        Placement fixed = algorithm.place(series.window(0, window), limits, null);
        Placement current = fixed;
        int replans = 0;
        int adopted = 0;
        int moves = 0;
        double dynamicCost = 0;
        double staticCost = 0;
        double[] dynamicRatio = new double[steps - window];
        double[] staticRatio = new double[steps - window];
        for (int t = window; t < steps; t++) {
            if (t > window && (t - window) % every == 0) {
                replans++;
                double[] recent = series.window(t - window, t);
                Placement candidate = algorithm.place(recent, limits, current);
                int moved = candidate.moves(current);
                double gainPerStep = (current.maxLoad(recent, n) - candidate.maxLoad(recent, n)) / window;
                if (moved > 0 && gainPerStep * every > moved * moveCost) {
                    current = candidate;
                    adopted++;
                    moves += moved;
                    dynamicCost += moved * moveCost;
                }
            }
            double[] now = series.window(t, t + 1);
            double mean = Arrays.stream(now).sum() / n;
            double dynamicMax = current.maxLoad(now, n);
            double staticMax = fixed.maxLoad(now, n);
            dynamicCost += dynamicMax;
            staticCost += staticMax;
            dynamicRatio[t - window] = mean > 0 ? dynamicMax / mean : Double.NaN;
            staticRatio[t - window] = mean > 0 ? staticMax / mean : Double.NaN;
        }
        return new Result(series.layer(), steps - window, replans, adopted, moves, dynamicCost, staticCost,
                dynamicRatio, staticRatio);
    }
}
