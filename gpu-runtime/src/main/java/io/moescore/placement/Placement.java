package io.moescore.placement;

import java.util.Arrays;

/**
 * Where one layer's experts live: {@code experts[e]} lists the devices holding a copy of expert e (increasing,
 * distinct). Copies share their expert's tokens evenly, so a device's load is the sum over the experts it holds of
 * {@code load[e] / copies(e)}.
 */
public record Placement(int[][] experts) {
    public Placement {
        experts = Arrays.stream(experts).map(d -> Arrays.stream(d).sorted().toArray()).toArray(int[][]::new);
        for (int e = 0; e < experts.length; e++) {
            if (experts[e].length == 0) {
                throw new IllegalArgumentException("expert " + e + " is on no device");
            }
            for (int i = 0; i < experts[e].length; i++) {
                if (experts[e][i] < 0) {
                    throw new IllegalArgumentException("expert " + e + " is on device " + experts[e][i]);
                }
                if (i > 0 && experts[e][i] == experts[e][i - 1]) {
                    throw new IllegalArgumentException("expert " + e + " is on device " + experts[e][i] + " twice");
                }
            }
        }
    }

    /** One device per expert: {@code device[e]}. */
    public static Placement of(int[] device) {
        return new Placement(Arrays.stream(device).mapToObj(d -> new int[] {d}).toArray(int[][]::new));
    }

    public int numExperts() {
        return experts.length;
    }

    /** How many devices hold expert e. */
    public int copies(int expert) {
        return experts[expert].length;
    }

    /** The first (lowest) device holding expert e. */
    public int home(int expert) {
        return experts[expert][0];
    }

    public boolean holds(int device, int expert) {
        return Arrays.binarySearch(experts[expert], device) >= 0;
    }

    /** Each device's tokens under these expert loads. */
    public double[] deviceLoads(double[] loads, int devices) {
        if (loads.length != experts.length) {
            throw new IllegalArgumentException(loads.length + " expert loads for a placement of " + experts.length
                    + " experts");
        }
        double[] out = new double[devices];
        for (int e = 0; e < experts.length; e++) {
            for (int d : experts[e]) {
                out[d] += loads[e] / experts[e].length;
            }
        }
        return out;
    }

    /** The busiest device's tokens under these loads. */
    public double maxLoad(double[] loads, int devices) {
        return Arrays.stream(deviceLoads(loads, devices)).max().orElse(0);
    }

    /** Expert copies this placement has that {@code from} has not: the weights moved to go from there to here. */
    public int moves(Placement from) {
        int moves = 0;
        for (int e = 0; e < experts.length; e++) {
            for (int d : experts[e]) {
                if (!from.holds(d, e)) {
                    moves++;
                }
            }
        }
        return moves;
    }

    /**
     * Throws where this placement breaks the limits: a device outside them, more experts on a device than its
     * slots, or more copies than experts and replicas.
     */
    public void check(PlacementLimits limits) {
        int[] used = new int[limits.devices()];
        int copies = 0;
        for (int e = 0; e < experts.length; e++) {
            for (int d : experts[e]) {
                if (d >= limits.devices()) {
                    throw new IllegalArgumentException("expert " + e + " is on device " + d + " of "
                            + limits.devices());
                }
                if (++used[d] > limits.slots()) {
                    throw new IllegalArgumentException("device " + d + " holds more than its " + limits.slots()
                            + " slots");
                }
                copies++;
            }
        }
        if (copies > experts.length + limits.replicas()) {
            throw new IllegalArgumentException(copies + " copies of " + experts.length + " experts: more than "
                    + limits.replicas() + " replicas");
        }
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Placement p && Arrays.deepEquals(experts, p.experts);
    }

    @Override
    public int hashCode() {
        return Arrays.deepHashCode(experts);
    }

    @Override
    public String toString() {
        return Arrays.deepToString(experts);
    }
}
