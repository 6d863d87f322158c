package io.moescore.backend;

/**
 * Sees each expert's inputs as a backend computes them, as fp32 host arrays: the rows of x routed to the expert
 * (the input of gate and up) and their SwiGLU products (the input of down). For calibration (wanda, SparseGPT).
 */
public interface ExpertInputObserver {
    /**
     * @param x      the layer's normed hidden states [tokens, hidden]; the expert's tokens are x's rows named by rows
     * @param swiglu silu(x gate^T) * (x up^T) for those tokens [rows.length, ffn]
     */
    void observe(int expert, float[] x, int[] rows, int hidden, float[] swiglu, int ffn);
}
