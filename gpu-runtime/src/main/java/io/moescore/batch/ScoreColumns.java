package io.moescore.batch;

/** Column (and JSON field) names of scoring input and output, shared by every reader and writer. */
public final class ScoreColumns {
    public static final String ID = "id";
    public static final String TOKENS = "tokens";
    public static final String TEXT = "text";

    public static final String NUM_TOKENS = "num_tokens";
    public static final String SUM_LOGPROB = "sum_logprob";
    public static final String MEAN_NLL = "mean_nll";
    public static final String PERPLEXITY = "perplexity";
    public static final String TOKEN_LOGPROBS = "token_logprobs";
    public static final String TOP_TOKENS = "top_tokens";
    public static final String ERROR = "error";

    private ScoreColumns() {
    }
}
