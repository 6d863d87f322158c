package io.moescore.engine;

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
 */
public record LoadOptions(SparsityPattern pruneExperts, boolean allowNonfinite, RoutingSpec routing) {
    /** Weights as stored, every value checked to be finite, the model's own routers. */
    public static final LoadOptions DEFAULT = new LoadOptions(null, false, RoutingSpec.MODEL);

    public LoadOptions {
        Objects.requireNonNull(routing, "routing");
    }

    public LoadOptions withPruneExperts(SparsityPattern pattern) {
        return new LoadOptions(pattern, allowNonfinite, routing);
    }

    public LoadOptions withAllowNonfinite(boolean allow) {
        return new LoadOptions(pruneExperts, allow, routing);
    }

    public LoadOptions withRouting(RoutingSpec spec) {
        return new LoadOptions(pruneExperts, allowNonfinite, spec);
    }
}
