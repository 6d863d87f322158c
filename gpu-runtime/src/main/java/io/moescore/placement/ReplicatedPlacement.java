package io.moescore.placement;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * EPLB-style placement (DeepSeek's expert-parallel load balancer): first the limits' replicas go, one at a time, to
 * the expert whose copies carry the most tokens each ({@code load / copies}, at most one copy per device); then the
 * copies, heaviest share first, each to the least loaded device with a free slot that does not hold that expert yet
 * (on ties a device that holds it in {@code current}, so re-planning moves fewer weights). With no replicas this is
 * the greedy's packing without its adopt-only-if-better rule.
 */
final class ReplicatedPlacement {
    private ReplicatedPlacement() {
    }

    static Placement place(double[] loads, PlacementLimits limits, Placement current) {
        limits.check(loads.length);
        int n = limits.devices();
        int[] copies = new int[loads.length];
        java.util.Arrays.fill(copies, 1);
        for (int r = 0; r < limits.replicas(); r++) {
            int hottest = -1;
            for (int e = 0; e < loads.length; e++) {
                if (copies[e] < n && (hottest < 0 || loads[e] / copies[e] > loads[hottest] / copies[hottest])) {
                    hottest = e;
                }
            }
            copies[hottest]++;
        }
        List<int[]> items = new ArrayList<>();  // {expert, copy}
        for (int e = 0; e < loads.length; e++) {
            for (int c = 0; c < copies[e]; c++) {
                items.add(new int[] {e, c});
            }
        }
        items.sort(Comparator.comparingDouble((int[] i) -> -loads[i[0]] / copies[i[0]])
                .thenComparingInt(i -> i[0]).thenComparingInt(i -> i[1]));
        int[] used = new int[n];
        double[] tokens = new double[n];
        List<List<Integer>> held = new ArrayList<>();
        for (int e = 0; e < loads.length; e++) {
            held.add(new ArrayList<>());
        }
        for (int[] item : items) {
            int e = item[0];
            int best = -1;
            for (int d = 0; d < n; d++) {
                if (used[d] >= limits.slots() || held.get(e).contains(d)) {
                    continue;
                }
                if (best < 0 || tokens[d] < tokens[best] || (tokens[d] == tokens[best] && current != null
                        && e < current.numExperts() && current.holds(d, e) && !current.holds(best, e))) {
                    best = d;
                }
            }
            if (best < 0) {
                // every device with a free slot holds this expert already: the replica is not placed (its share
                // falls back on the other copies, which deviceLoads accounts for)
                if (held.get(e).isEmpty()) {
                    throw new IllegalStateException("expert " + e + " found no free slot");
                }
                continue;
            }
            held.get(e).add(best);
            used[best]++;
            tokens[best] += loads[e] / copies[e];
        }
        return new Placement(held.stream().map(h -> h.stream().mapToInt(Integer::intValue).toArray())
                .toArray(int[][]::new));
    }
}
