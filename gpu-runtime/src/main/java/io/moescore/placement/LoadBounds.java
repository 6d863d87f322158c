package io.moescore.placement;

import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;

/**
 * Lower bounds on the busiest device's tokens, whatever the placement within the limits: the yardstick the
 * algorithms are judged by.
 * <ul>
 *   <li>{@link #simple}: {@code max(total / devices, heaviest expert / its most copies)};</li>
 *   <li>{@link #bound}: without replicas also the pigeonhole bounds (of the m heaviest experts some device holds
 *       {@code ceil(m / devices)}, so it carries at least the lightest {@code ceil(m / devices)} of them) and the
 *       slot bound (where slots are short every device holds at least {@code E - (N-1) S} experts, so the heaviest
 *       expert's device carries the lightest others too);</li>
 *   <li>{@link #best}: without replicas, the exact optimum by branch and bound where it finishes within a node
 *       budget (the greedy's placement as the first incumbent), else {@link #bound}.</li>
 * </ul>
 */
public final class LoadBounds {
    /** A bound, and whether it is the optimum itself (branch and bound finished). */
    public record Bound(double value, boolean exact) {
    }

    private LoadBounds() {
    }

    public static double simple(double[] loads, PlacementLimits limits) {
        double total = Arrays.stream(loads).sum();
        double heaviest = Arrays.stream(loads).max().orElse(0);
        return Math.max(total / limits.devices(), heaviest / limits.maxCopies());
    }

    /** The best of the closed-form bounds above. */
    public static double bound(double[] loads, PlacementLimits limits) {
        double best = simple(loads, limits);
        if (limits.replicas() > 0) {
            return best;
        }
        double[] desc = descending(loads);
        int n = limits.devices();
        for (int m = n + 1; m <= desc.length; m++) {
            int k = (m + n - 1) / n;
            double sum = 0;
            for (int j = m - k; j < m; j++) {
                sum += desc[j];
            }
            best = Math.max(best, sum);
        }
        int fewest = desc.length - (n - 1) * limits.slots();  // experts every device must hold, at least
        if (fewest > 1) {
            double sum = desc[0];
            for (int j = 0; j < fewest - 1; j++) {
                sum += desc[desc.length - 1 - j];
            }
            best = Math.max(best, sum);
        }
        return best;
    }

    /**
     * The optimum without replicas where branch and bound proves it within {@code nodeBudget} search nodes, else
     * {@link #bound}. With replicas, {@link #bound}.
     */
    public static Bound best(double[] loads, PlacementLimits limits, long nodeBudget) {
        double lower = bound(loads, limits);
        if (limits.replicas() > 0 || nodeBudget <= 0) {
            return new Bound(lower, false);
        }
        double upper = GreedyPlacement.place(loads, new PlacementLimits(limits.devices(), limits.slots(), 0), null)
                .maxLoad(loads, limits.devices());
        Search search = new Search(descending(loads), limits, upper, lower, nodeBudget);
        return search.run() ? new Bound(search.best, true) : new Bound(lower, false);
    }

    static double[] descending(double[] loads) {
        double[] d = loads.clone();
        Arrays.sort(d);
        for (int i = 0; i < d.length / 2; i++) {
            double t = d[i];
            d[i] = d[d.length - 1 - i];
            d[d.length - 1 - i] = t;
        }
        return d;
    }

    /** Depth-first search over devices for each expert, heaviest first; equal device states are tried once. */
    private static final class Search {
        private final double[] loads;
        private final int devices;
        private final int slots;
        private final double lower;
        private final double eps;
        private final long budget;
        private final double[] tokens;
        private final int[] used;
        private long nodes;
        double best;

        Search(double[] loads, PlacementLimits limits, double upper, double lower, long budget) {
            this.loads = loads;
            this.devices = limits.devices();
            this.slots = limits.slots();
            this.best = upper;
            this.lower = lower;
            this.budget = budget;
            this.eps = 1e-9 * Math.max(1, upper);
            this.tokens = new double[devices];
            this.used = new int[devices];
        }

        /** True where the search finished: {@link #best} is the optimum. */
        boolean run() {
            try {
                visit(0, 0);
                return true;
            } catch (BudgetSpent e) {
                return false;
            }
        }

        private void visit(int i, double max) {
            if (++nodes > budget) {
                throw new BudgetSpent();
            }
            if (i == loads.length) {
                best = max;
                return;
            }
            if (best <= lower + eps) {
                return;  // the incumbent meets a lower bound: optimal
            }
            Set<DeviceState> tried = new HashSet<>();
            for (int d = 0; d < devices; d++) {
                if (used[d] >= slots) {
                    continue;
                }
                double before = tokens[d];
                double next = before + loads[i];
                if (next >= best - eps || !tried.add(new DeviceState(before, used[d]))) {
                    continue;
                }
                tokens[d] = next;
                used[d]++;
                visit(i + 1, Math.max(max, next));
                tokens[d] = before;
                used[d]--;
                if (best <= lower + eps) {
                    return;
                }
            }
        }
    }

    /** Devices in equal states are interchangeable for the experts still to place. */
    private record DeviceState(double tokens, int used) {
    }

    private static final class BudgetSpent extends RuntimeException {
        BudgetSpent() {
            super(null, null, false, false);
        }
    }
}
