package io.moescore.engine;

/**
 * What a calibration pass sees: every routed expert's inputs, per MoE layer and forward pass
 * ({@link Engine#score(TokenBatch, ScoreOptions, RoutedInputs)}). Experts that no token of the pass reached are
 * shown with no rows.
 */
public interface RoutedInputs {
    /**
     * @param x      the layer's normed hidden states [tokens, hidden]; the expert's tokens are x's rows named by rows
     * @param swiglu silu(x gate^T) * (x up^T) for those tokens [rows.length, ffn]: the input of down
     */
    void accept(int layer, int expert, float[] x, int[] rows, int hidden, float[] swiglu, int ffn);

    /** Shows every pass to both. */
    static RoutedInputs both(RoutedInputs a, RoutedInputs b) {
        return (layer, expert, x, rows, hidden, swiglu, ffn) -> {
            a.accept(layer, expert, x, rows, hidden, swiglu, ffn);
            b.accept(layer, expert, x, rows, hidden, swiglu, ffn);
        };
    }
}
