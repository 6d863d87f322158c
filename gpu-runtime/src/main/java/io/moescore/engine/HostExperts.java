package io.moescore.engine;

import io.moescore.backend.Backend;
import io.moescore.backend.BiasedExperts;
import io.moescore.backend.ExpertWeights;
import io.moescore.backend.WeightSlice;
import io.moescore.sparse.Sparse24;
import io.moescore.sparse.VectorSparse;
import java.util.function.Function;

/**
 * One layer's routed experts as the host holds them before they are placed: the checkpoint's slices (dense), or
 * the arrays the loader made (2:4, 128:2:8 packed; gpt-oss's biased experts). {@link ModelWeights} places resident
 * layers' experts once; a streamed layer's stay here and {@link ExpertStore} places them again for every forward,
 * through the same backend call, so a streamed layer computes on exactly the weights a resident one would.
 *
 * @param placer  the backend call that places them
 * @param weights the gate, up and down weights of every expert (biases aside), as {@link MemoryPlan} counts them
 */
record HostExperts(Function<Backend, ExpertWeights> placer, long weights) {
    /** Dense experts read from the checkpoint's slices (which must stay open while these are placed). */
    static HostExperts dense(WeightSlice[] gate, WeightSlice[] up, WeightSlice[] down) {
        return new HostExperts(b -> b.expertWeights(gate, up, down), size(gate.length, gate[0].rows(), gate[0].cols()));
    }

    /** 2:4 packed experts, [gate, up, down][expert]. */
    static HostExperts sparse(Sparse24.Packed[][] p) {
        return new HostExperts(b -> b.sparseExpertWeights(p[0], p[1], p[2]),
                size(p[0].length, p[0][0].rows(), p[0][0].cols()));
    }

    /** 128:2:8 packed experts, [gate, up, down][expert]. */
    static HostExperts vectorSparse(VectorSparse.Packed[][] p) {
        return new HostExperts(b -> b.vectorSparseExpertWeights(p[0], p[1], p[2]),
                size(p[0].length, p[0][0].rows(), p[0][0].cols()));
    }

    /** gpt-oss's experts with their biases and clamped SwiGLU. */
    static HostExperts biased(BiasedExperts e) {
        return new HostExperts(b -> b.biasedExpertWeights(e), size(e.numExperts(), e.ffn(), e.hidden()));
    }

    /** Places the experts on {@code backend}; the caller owns the result. */
    ExpertWeights place(Backend backend) {
        return placer.apply(backend);
    }

    /** Gate and up are [ffn, hidden], down [hidden, ffn]: three times the gate's size per expert. */
    private static long size(int experts, int rows, int cols) {
        return 3L * experts * rows * cols;
    }
}
