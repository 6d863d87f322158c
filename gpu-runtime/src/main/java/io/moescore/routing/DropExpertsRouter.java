package io.moescore.routing;

import java.util.Arrays;

/**
 * A router with some experts removed: their logits become -Infinity before {@code inner} (the model's own router)
 * routes, so they are never chosen and the model's softmax renormalises over the experts that remain:
 * p_e = exp(z_e) / sum over kept experts of exp(z_j), then the model's top-k and norm_topk_prob as usual. A NaN
 * logit of a removed expert no longer reaches the row; any other NaN routes as {@link TopKSoftmaxRouter} says.
 *
 * @param dropped per expert, whether it is removed (as many as the layer has experts)
 */
public record DropExpertsRouter(Router inner, boolean[] dropped) implements Router {
    public DropExpertsRouter {
        dropped = dropped.clone();
    }

    @Override
    public HostExpertRouting route(float[] logits, int rows, int numExperts) {
        if (numExperts != dropped.length) {
            throw new IllegalArgumentException("expert drop list for " + dropped.length + " experts routes "
                    + numExperts);
        }
        float[] masked = logits.clone();
        for (int t = 0; t < rows; t++) {
            for (int e = 0; e < numExperts; e++) {
                if (dropped[e]) {
                    masked[t * numExperts + e] = Float.NEGATIVE_INFINITY;
                }
            }
        }
        return inner.route(masked, rows, numExperts);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof DropExpertsRouter r && inner.equals(r.inner) && Arrays.equals(dropped, r.dropped);
    }

    @Override
    public int hashCode() {
        return inner.hashCode() * 31 + Arrays.hashCode(dropped);
    }

    @Override
    public String toString() {
        return "DropExpertsRouter(" + inner + ", dropped " + Arrays.toString(dropped) + ")";
    }
}
