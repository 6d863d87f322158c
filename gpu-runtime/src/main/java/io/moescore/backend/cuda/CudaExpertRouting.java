package io.moescore.backend.cuda;

import io.moescore.routing.ExpertRouting;
import jcuda.driver.CUdeviceptr;

/**
 * Routing in device memory: per expert, offsets into the lists of token rows and gate weights (each expert's
 * tokens ascending). The grouped expert launches plan their work on the device (route_work); the counts come to
 * the host for the load statistics without stopping the stream ({@link RoutedCounts}). Where a router gives tokens
 * a varying number of experts, the routed total is known on the device only (offsets[E]): {@link #entries} is then
 * the most there can be, what every buffer is sized for.
 */
final class CudaExpertRouting implements ExpertRouting {
    final int numExperts;
    /** The most routing entries (tokens x k; for a varying count, tokens x the most experts a token gets). */
    final int entries;
    final CUdeviceptr offsets;
    final CUdeviceptr tokens;
    final CUdeviceptr gates;
    /**
     * [tokens, k]: each token's chosen experts, for the batch-invariant combine (combine_expert_outputs): all k of
     * a row, or its first perToken[t] where the count varies.
     */
    final CUdeviceptr chosen;
    /** [tokens]: each token's expert count where it varies; null where every token has k. */
    final CUdeviceptr perToken;
    final int k;
    private final RoutedCounts counts;
    private final Runnable release;

    CudaExpertRouting(int numExperts, int entries, CUdeviceptr offsets, CUdeviceptr tokens, CUdeviceptr gates,
                      CUdeviceptr chosen, CUdeviceptr perToken, int k, RoutedCounts counts, Runnable release) {
        this.numExperts = numExperts;
        this.entries = entries;
        this.offsets = offsets;
        this.tokens = tokens;
        this.gates = gates;
        this.chosen = chosen;
        this.perToken = perToken;
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
