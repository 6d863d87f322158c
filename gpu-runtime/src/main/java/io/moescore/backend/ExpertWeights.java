package io.moescore.backend;

/**
 * The SwiGLU feed-forward weights of a layer's experts (or of one dense block: a single expert), placed on a
 * backend in whatever layout its expert kernels read (per-expert arrays on the CPU; interleaved gate/up slabs
 * and pointer tables on the GPU; packed 2:4 values and metadata for sparse experts).
 */
public interface ExpertWeights extends AutoCloseable {
    int numExperts();

    /** The ffn width of each expert. */
    int ffnSize();

    @Override
    void close();
}
