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

    /**
     * Called before a forward pass shows its experts' inputs: the sequences the pass runs, as their indices in the
     * scored batch (ascending; sequences the engine refused are not there), and where each starts among the pass's
     * rows: rows {@code offsets[i] .. offsets[i + 1] - 1} are sequence {@code batchIndices[i]}'s tokens. So a
     * calibration statistic can be summed per sequence, the same whatever the sequences were batched with.
     */
    default void sequences(int[] batchIndices, int[] offsets) {
    }

    /** Shows every pass to both. */
    static RoutedInputs both(RoutedInputs a, RoutedInputs b) {
        return new RoutedInputs() {
            @Override
            public void accept(int layer, int expert, float[] x, int[] rows, int hidden, float[] swiglu, int ffn) {
                a.accept(layer, expert, x, rows, hidden, swiglu, ffn);
                b.accept(layer, expert, x, rows, hidden, swiglu, ffn);
            }

            @Override
            public void sequences(int[] batchIndices, int[] offsets) {
                a.sequences(batchIndices, offsets);
                b.sequences(batchIndices, offsets);
            }
        };
    }
}
