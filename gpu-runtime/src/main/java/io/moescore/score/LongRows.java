package io.moescore.score;

/**
 * What becomes of a row longer than the model's context ({@code max_position_embeddings}): {@code --long-rows}.
 * A continuation row longer than the context is cut from the left under either {@link #TRUNCATE} or
 * {@link #STRIDE}, as lm-evaluation-harness does ({@link RowPlan}).
 */
public enum LongRows {
    /** The row gets an error (the default, and moescore's behaviour before the option existed). */
    ERROR("error"),
    /** Only the first context tokens are scored; the row says {@code truncated}. */
    TRUNCATE("truncate"),
    /**
     * Hugging Face's strided perplexity: windows of the context's length, each starting {@code --stride} tokens after
     * the one before, each token scored once, with up to {@code context - stride} tokens before it in its window.
     */
    STRIDE("stride");

    private final String userName;

    LongRows(String userName) {
        this.userName = userName;
    }

    public String userName() {
        return userName;
    }
}
