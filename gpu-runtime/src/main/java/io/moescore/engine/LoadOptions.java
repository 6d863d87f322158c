package io.moescore.engine;

import io.moescore.placement.PlanFile;
import io.moescore.routing.RoutingSpec;
import io.moescore.sparse.SparsityPattern;
import java.util.Objects;

/**
 * How {@link Engine#load} and {@link ModelWeights#load} read a checkpoint.
 *
 * @param pruneExperts   prune the routed experts of a dense checkpoint to this pattern by magnitude while loading
 *                       (benchmarks and quick experiments; null: load them as stored)
 * @param allowNonfinite load weights holding NaN or infinities; by default the first one found fails the load with
 *                       a {@link io.moescore.model.NonFiniteWeightException} naming the tensor and its index (the
 *                       check runs on the values as they are converted or uploaded, no pass of its own)
 * @param routing        the engine's routers ({@code --routing}; {@link RoutingSpec#MODEL}: the model's own)
 * @param deviceMemory   bytes the engine may use for weights and activations ({@code --device-memory}; 0: the
 *                       backend's memory, every weight resident). Under a cap the MoE layers' routed experts that
 *                       do not fit stream from host memory ({@link ExpertResidency}); scores do not change
 * @param placement      where an engine over several devices puts each MoE layer's routed experts
 *                       ({@code --placement}, checked against the model by {@link ExpertPlacement#of});
 *                       {@link PlanFile#NONE}: round-robin. One device ignores it unless a plan is given
 */
public record LoadOptions(SparsityPattern pruneExperts, boolean allowNonfinite, RoutingSpec routing,
                          long deviceMemory, PlanFile placement) {
    /** Weights as stored, every value checked to be finite, the model's own routers, no memory cap. */
    public static final LoadOptions DEFAULT = new LoadOptions(null, false, RoutingSpec.MODEL, 0, PlanFile.NONE);

    public LoadOptions {
        Objects.requireNonNull(routing, "routing");
        Objects.requireNonNull(placement, "placement");
        if (deviceMemory < 0) {
            throw new IllegalArgumentException("--device-memory must be at least 0 bytes, got " + deviceMemory);
        }
    }

    public LoadOptions withPruneExperts(SparsityPattern pattern) {
        return new LoadOptions(pattern, allowNonfinite, routing, deviceMemory, placement);
    }

    public LoadOptions withAllowNonfinite(boolean allow) {
        return new LoadOptions(pruneExperts, allow, routing, deviceMemory, placement);
    }

    public LoadOptions withRouting(RoutingSpec spec) {
        return new LoadOptions(pruneExperts, allowNonfinite, spec, deviceMemory, placement);
    }

    /** These options with a memory cap of {@code bytes} (0: none). */
    public LoadOptions withDeviceMemory(long bytes) {
        return new LoadOptions(pruneExperts, allowNonfinite, routing, bytes, placement);
    }

    /** These options with a placement plan ({@link PlanFile#NONE}: round-robin over the engine's devices). */
    public LoadOptions withPlacement(PlanFile plan) {
        return new LoadOptions(pruneExperts, allowNonfinite, routing, deviceMemory, plan);
    }
}
