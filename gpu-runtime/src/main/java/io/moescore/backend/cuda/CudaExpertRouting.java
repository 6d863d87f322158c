package io.moescore.backend.cuda;

import io.moescore.routing.ExpertRouting;
import jcuda.driver.CUdeviceptr;

/**
 * Routing in device memory: per expert, offsets into the lists of token rows and gate weights (each expert's
 * tokens ascending). The grouped expert launches plan their work on the device (route_work); the counts come to
 * the host for the load statistics without stopping the stream ({@link RoutedCounts}).
 */
final class CudaExpertRouting implements ExpertRouting {
    final int numExperts;
    final int entries;
    final CUdeviceptr offsets;
    final CUdeviceptr tokens;
    final CUdeviceptr gates;
    /** [tokens, k]: each token's chosen experts, for the batch-invariant combine (combine_expert_outputs). */
    final CUdeviceptr chosen;
    final int k;
    private final RoutedCounts counts;
    private final Runnable release;

    CudaExpertRouting(int numExperts, int entries, CUdeviceptr offsets, CUdeviceptr tokens, CUdeviceptr gates,
                      CUdeviceptr chosen, int k, RoutedCounts counts, Runnable release) {
        this.numExperts = numExperts;
        this.entries = entries;
        this.offsets = offsets;
        this.tokens = tokens;
        this.gates = gates;
        this.chosen = chosen;
        this.k = k;
        this.counts = counts;
        this.release = release;
    }

    @Override
    public int numExperts() {
        return numExperts;
    }

    @Override
    public int[] tokensPerExpert() {
        return counts.get().clone();
    }

    @Override
    public void close() {
        counts.close();
        release.run();
    }
}
