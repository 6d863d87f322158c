package io.moescore.placement;

/**
 * What a placement may use: {@code devices} devices, each with room for {@code slots} experts of a layer, and up to
 * {@code replicas} extra copies of that layer's experts (replicas of hot experts, EPLB-style; 0: every expert
 * exactly once). Copies of one expert sit on distinct devices and share its tokens evenly.
 */
public record PlacementLimits(int devices, int slots, int replicas) {
    public PlacementLimits {
        if (devices < 1) {
            throw new IllegalArgumentException("devices must be at least 1, got " + devices);
        }
        if (slots < 1) {
            throw new IllegalArgumentException("slots must be at least 1, got " + slots);
        }
        if (replicas < 0) {
            throw new IllegalArgumentException("replicas must be 0 or more, got " + replicas);
        }
    }

    /**
     * The limits for a layer of {@code experts} experts; {@code slots} 0 gives the fewest that hold every expert
     * and replica, {@code ceil((experts + replicas) / devices)}.
     *
     * @throws IllegalArgumentException where the devices' slots cannot hold every expert and replica, or a replica
     *                                  would have no device left to go to
     */
    public static PlacementLimits of(int devices, int slots, int replicas, int experts) {
        if (devices < 1) {
            throw new IllegalArgumentException("devices must be at least 1, got " + devices);
        }
        int s = slots > 0 ? slots : (int) ((experts + (long) Math.max(0, replicas) + devices - 1) / devices);
        PlacementLimits limits = new PlacementLimits(devices, s, replicas);
        limits.check(experts);
        return limits;
    }

    /** Throws where these limits cannot place a layer of {@code experts} experts. */
    public void check(int experts) {
        if ((long) devices * slots < experts + (long) replicas) {
            throw new IllegalArgumentException(devices + " devices x " + slots + " slots hold fewer than the "
                    + experts + " experts" + (replicas > 0 ? " and " + replicas + " replicas" : "") + " of a layer");
        }
        if (replicas > (long) experts * (devices - 1)) {
            throw new IllegalArgumentException(replicas + " replicas of " + experts + " experts on " + devices
                    + " devices: at most " + (long) experts * (devices - 1) + " (one copy per device)");
        }
    }

    /** The most copies one expert may have: one per device, and its replicas. */
    public int maxCopies() {
        return (int) Math.min(devices, 1L + replicas);
    }
}
