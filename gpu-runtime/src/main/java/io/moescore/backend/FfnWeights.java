package io.moescore.backend;

/** A SwiGLU feed-forward block: down( silu(x gate^T) * (x up^T) )^T; gate and up are [ffn, hidden], down [hidden, ffn]. */
public record FfnWeights(Tensor gate, Tensor up, Tensor down) implements AutoCloseable {
    public int ffnSize() {
        return gate.rows();
    }

    @Override
    public void close() {
        gate.close();
        up.close();
        down.close();
    }
}
