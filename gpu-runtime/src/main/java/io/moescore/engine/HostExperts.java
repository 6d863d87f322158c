package io.moescore.engine;

import io.moescore.backend.Backend;
import io.moescore.backend.BiasedExperts;
import io.moescore.backend.ExpertWeights;
import io.moescore.backend.WeightSlice;
import io.moescore.sparse.Sparse24;
import io.moescore.sparse.VectorSparse;
import java.util.Arrays;
import java.util.stream.IntStream;

/**
 * One layer's routed experts as the host holds them before they are placed: the checkpoint's slices (dense), or
 * the arrays the loader made (2:4, 128:2:8 packed; gpt-oss's biased experts). {@link ModelWeights} places resident
 * layers' experts once; a streamed layer's stay here and {@link ExpertStore} places them again for every forward,
 * through the same backend call, so a streamed layer computes on exactly the weights a resident one would. Where
 * experts are spread over several devices ({@link DeviceGroup}), each device gets the ones it holds
 * ({@link #select}), through the same call.
 *
 * @param placer     the backend call that places a choice of them
 * @param numExperts how many experts the layer has
 * @param weights    the gate, up and down weights of every expert (biases aside), as {@link MemoryPlan} counts them
 */
record HostExperts(Placer placer, int numExperts, long weights) {
    /** Places the experts listed (layer indices, in the order they get on the backend). */
    @FunctionalInterface
    interface Placer {
        ExpertWeights place(Backend backend, int[] experts);
    }

    /** Dense experts read from the checkpoint's slices (which must stay open while these are placed). */
    static HostExperts dense(WeightSlice[] gate, WeightSlice[] up, WeightSlice[] down) {
        return new HostExperts((b, e) -> b.expertWeights(pick(gate, e), pick(up, e), pick(down, e)), gate.length,
                size(gate.length, gate[0].rows(), gate[0].cols()));
    }

    /** 2:4 packed experts, [gate, up, down][expert]. */
    static HostExperts sparse(Sparse24.Packed[][] p) {
        return new HostExperts((b, e) -> b.sparseExpertWeights(pick(p[0], e), pick(p[1], e), pick(p[2], e)),
                p[0].length, size(p[0].length, p[0][0].rows(), p[0][0].cols()));
    }

    /** 128:2:8 packed experts, [gate, up, down][expert]. */
    static HostExperts vectorSparse(VectorSparse.Packed[][] p) {
        return new HostExperts((b, e) -> b.vectorSparseExpertWeights(pick(p[0], e), pick(p[1], e), pick(p[2], e)),
                p[0].length, size(p[0].length, p[0][0].rows(), p[0][0].cols()));
    }

    /** gpt-oss's experts with their biases and clamped SwiGLU. */
    static HostExperts biased(BiasedExperts x) {
        return new HostExperts((b, e) -> b.biasedExpertWeights(new BiasedExperts(x.hidden(), x.ffn(),
                pick(x.gate(), e), pick(x.up(), e), pick(x.down(), e), pick(x.gateBias(), e), pick(x.upBias(), e),
                pick(x.downBias(), e), x.activation())), x.numExperts(), size(x.numExperts(), x.ffn(), x.hidden()));
    }

    /** Places every expert on {@code backend}; the caller owns the result. */
    ExpertWeights place(Backend backend) {
        return placer.place(backend, IntStream.range(0, numExperts).toArray());
    }

    /**
     * These experts' subset {@code experts} (layer indices, each in [0, numExperts)), numbered 0.. in that order
     * where placed.
     */
    HostExperts select(int[] experts) {
        for (int e : experts) {
            if (e < 0 || e >= numExperts) {
                throw new IllegalArgumentException("expert " + e + " of a layer of " + numExperts);
            }
        }
        int[] chosen = experts.clone();
        return new HostExperts((b, e) -> placer.place(b, Arrays.stream(e).map(i -> chosen[i]).toArray()),
                chosen.length, numExperts == 0 ? 0 : weights / numExperts * chosen.length);
    }

    /** {@code all}'s entries at {@code indices}, in that order. */
    private static <T> T[] pick(T[] all, int[] indices) {
        T[] out = Arrays.copyOf(all, indices.length);
        for (int i = 0; i < indices.length; i++) {
            out[i] = all[indices[i]];
        }
        return out;
    }

    /** Gate and up are [ffn, hidden], down [hidden, ffn]: three times the gate's size per expert. */
    private static long size(int experts, int rows, int cols) {
        return 3L * experts * rows * cols;
    }
}
