package io.moescore.arrow;

/**
 * Column names of moescore's input and result tables, the same in Arrow, Parquet and Spark as in the JSON lines
 * that the single-process scorer (gpu-runtime's {@code LocalScorer}) reads and writes.
 */
public final class Columns {
    /** Input and result: the row's id, int64 or utf8, copied unchanged to the result. */
    public static final String ID = "id";
    /** Input: the token ids, list&lt;int32&gt;. */
    public static final String TOKENS = "tokens";
    /** Input, optional: the text the tokens came from, utf8; never read by the scorer. */
    public static final String TEXT = "text";

    public static final String NUM_TOKENS = "num_tokens";
    public static final String SUM_LOGPROB = "sum_logprob";
    public static final String MEAN_NLL = "mean_nll";
    public static final String PERPLEXITY = "perplexity";
    public static final String TOKEN_LOGPROBS = "token_logprobs";
    public static final String TOP_TOKENS = "top_tokens";
    public static final String ERROR = "error";

    private Columns() {
    }
}
