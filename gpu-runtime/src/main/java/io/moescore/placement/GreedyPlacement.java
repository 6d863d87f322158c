package io.moescore.placement;

import java.util.Comparator;
import java.util.stream.IntStream;

/**
 * SmartMoE's placement ({@code greedy_gen_mapping_from_history} of thu-pacman/SmartMoE-AE), with any number of slots
 * per device: experts, heaviest first, each to the least loaded device that has a free slot; where the expert's
 * current device is among the least loaded it stays there; the new placement is adopted only if its busiest device
 * carries less than the current placement's busiest. Every expert gets exactly one device (replicas are EPLB's).
 */
final class GreedyPlacement {
    private GreedyPlacement() {
    }

    static Placement place(double[] loads, PlacementLimits limits, Placement current) {
        limits.check(loads.length);
        int n = limits.devices();
        int[] used = new int[n];
        double[] tokens = new double[n];
        int[] device = new int[loads.length];
        for (int e : heaviestFirst(loads)) {
            int best = -1;
            for (int d = 0; d < n; d++) {
                if (used[d] < limits.slots() && (best < 0 || tokens[d] < tokens[best])) {
                    best = d;
                }
            }
            int old = current == null ? -1 : current.home(e);
            if (old >= 0 && old < n && used[old] < limits.slots() && tokens[old] == tokens[best]) {
                best = old;
            }
            device[e] = best;
            used[best]++;
            tokens[best] += loads[e];
        }
        Placement planned = Placement.of(device);
        if (current != null && current.numExperts() == loads.length && fits(current, limits)
                && !(planned.maxLoad(loads, n) < current.maxLoad(loads, n))) {
            return current;
        }
        return planned;
    }

    /** Expert indices by load, heaviest first; equal loads in index order. */
    static int[] heaviestFirst(double[] loads) {
        return IntStream.range(0, loads.length).boxed()
                .sorted(Comparator.comparingDouble((Integer e) -> -loads[e]).thenComparingInt(e -> e))
                .mapToInt(Integer::intValue).toArray();
    }

    private static boolean fits(Placement p, PlacementLimits limits) {
        try {
            p.check(limits);
            return true;
        } catch (IllegalArgumentException e) {
            return false;
        }
    }
}
