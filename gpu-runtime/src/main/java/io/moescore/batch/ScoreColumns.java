package io.moescore.batch;

import java.util.ArrayList;
import java.util.List;

/** Column (and JSON field) names of scoring input and output, shared by every reader and writer. */
public final class ScoreColumns {
    public static final String ID = "id";
    public static final String TOKENS = "tokens";
    public static final String TEXT = "text";
    /** Continuation scoring's input: the context (text, or token ids) ... */
    public static final String CONTEXT = "context";
    /** ... and the continuation whose log-prob given the context is asked for (the same kind as the context). */
    public static final String CONTINUATION = "continuation";

    public static final String NUM_TOKENS = "num_tokens";
    public static final String SUM_LOGPROB = "sum_logprob";
    public static final String MEAN_NLL = "mean_nll";
    public static final String PERPLEXITY = "perplexity";
    public static final String TOKEN_LOGPROBS = "token_logprobs";
    public static final String TOP_TOKENS = "top_tokens";
    /** Long rows (--long-rows stride or truncate): the windows a row was scored in (1 where it fits). */
    public static final String NUM_WINDOWS = "num_windows";
    /** Long rows: whether the row was cut to the model's context (num_tokens is then what was scored). */
    public static final String TRUNCATED = "truncated";
    /** Continuation rows: the sum of the continuation tokens' log-probs given everything before each. */
    public static final String CONTINUATION_LOGPROB = "continuation_logprob";
    /** Continuation rows: how many tokens the continuation has (after the tokenization boundary). */
    public static final String CONTINUATION_TOKENS = "continuation_tokens";
    /** Continuation rows: whether every continuation token is the model's most likely one given its prefix. */
    public static final String IS_GREEDY = "is_greedy";
    public static final String ERROR = "error";

    private ScoreColumns() {
    }

    /**
     * Which score columns an output has; every writer (score-local's JSON lines, the Arrow vectors the Spark job
     * writes, the Spark schema) lists them in {@link #names}' order.
     *
     * @param tokenLogProbs {@link #TOKEN_LOGPROBS}
     * @param topTokens     {@link #TOP_TOKENS}
     * @param longRows      {@link #NUM_WINDOWS} and {@link #TRUNCATED} (long rows scored, not refused)
     * @param continuation  {@link #CONTINUATION_LOGPROB}, {@link #CONTINUATION_TOKENS} and {@link #IS_GREEDY}
     */
    public record Layout(boolean tokenLogProbs, boolean topTokens, boolean longRows, boolean continuation) {
        /** The columns after the id, in order. */
        public List<String> names() {
            List<String> names = new ArrayList<>(List.of(NUM_TOKENS, SUM_LOGPROB, MEAN_NLL, PERPLEXITY));
            if (tokenLogProbs) {
                names.add(TOKEN_LOGPROBS);
            }
            if (topTokens) {
                names.add(TOP_TOKENS);
            }
            if (longRows) {
                names.addAll(List.of(NUM_WINDOWS, TRUNCATED));
            }
            if (continuation) {
                names.addAll(List.of(CONTINUATION_LOGPROB, CONTINUATION_TOKENS, IS_GREEDY));
            }
            names.add(ERROR);
            return names;
        }
    }
}
