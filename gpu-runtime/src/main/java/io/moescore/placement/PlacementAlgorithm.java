package io.moescore.placement;

import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/** The placement algorithms, by the name a user gives ({@code --algorithm}). */
public enum PlacementAlgorithm {
    /** SmartMoE's greedy: experts swapped between devices, never replicated ({@link GreedyPlacement}). */
    GREEDY("greedy") {
        @Override
        public Placement place(double[] loads, PlacementLimits limits, Placement current) {
            return GreedyPlacement.place(loads, limits, current);
        }
    },
    /** EPLB-style: the replicas go to the hottest experts, then copies are packed ({@link ReplicatedPlacement}). */
    EPLB("eplb") {
        @Override
        public Placement place(double[] loads, PlacementLimits limits, Placement current) {
            return ReplicatedPlacement.place(loads, limits, current);
        }
    },
    /** Static: expert e on device e mod N, whatever the loads (the baseline). */
    ROUND_ROBIN("round-robin") {
        @Override
        public Placement place(double[] loads, PlacementLimits limits, Placement current) {
            limits.check(loads.length);
            int[] device = new int[loads.length];
            Arrays.setAll(device, e -> e % limits.devices());
            return Placement.of(device);
        }
    };

    private final String userName;

    PlacementAlgorithm(String userName) {
        this.userName = userName;
    }

    /**
     * A placement of one layer's experts.
     *
     * @param loads   tokens per expert (of a window of the trace)
     * @param current the placement in force, or null: the greedy keeps an expert where it is on ties and keeps
     *                {@code current} unless its own plan lowers the busiest device's load
     */
    public abstract Placement place(double[] loads, PlacementLimits limits, Placement current);

    public String userName() {
        return userName;
    }

    /** Every algorithm's name, as {@code --algorithm} takes them. */
    public static List<String> names() {
        return Arrays.stream(values()).map(PlacementAlgorithm::userName).toList();
    }

    /** The algorithm named {@code name} (any case); throws listing the names otherwise. */
    public static PlacementAlgorithm named(String name) {
        for (PlacementAlgorithm a : values()) {
            if (a.userName.equals(name.trim().toLowerCase(Locale.ROOT))) {
                return a;
            }
        }
        throw new IllegalArgumentException("'" + name + "' is not one of " + names());
    }
}
