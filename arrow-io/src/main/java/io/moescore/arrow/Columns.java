package io.moescore.arrow;

import io.moescore.batch.ScoreColumns;

/**
 * Column names of moescore's input and result tables, the same in Arrow, Parquet and Spark as in the JSON lines
 * that the single-process scorer (gpu-runtime's {@code LocalScorer}) reads and writes: one set of names,
 * {@link ScoreColumns}, documented here for Arrow.
 */
public final class Columns {
    /** Input and result: the row's id, int64 or utf8, copied unchanged to the result. */
    public static final String ID = ScoreColumns.ID;
    /** Input: the token ids, list&lt;int32&gt;. */
    public static final String TOKENS = ScoreColumns.TOKENS;
    /** Input, optional: the text the tokens came from, utf8; never read by the scorer. */
    public static final String TEXT = ScoreColumns.TEXT;

    public static final String NUM_TOKENS = ScoreColumns.NUM_TOKENS;
    public static final String SUM_LOGPROB = ScoreColumns.SUM_LOGPROB;
    public static final String MEAN_NLL = ScoreColumns.MEAN_NLL;
    public static final String PERPLEXITY = ScoreColumns.PERPLEXITY;
    public static final String TOKEN_LOGPROBS = ScoreColumns.TOKEN_LOGPROBS;
    public static final String TOP_TOKENS = ScoreColumns.TOP_TOKENS;
    public static final String NUM_WINDOWS = ScoreColumns.NUM_WINDOWS;
    public static final String TRUNCATED = ScoreColumns.TRUNCATED;
    public static final String CONTINUATION_LOGPROB = ScoreColumns.CONTINUATION_LOGPROB;
    public static final String CONTINUATION_TOKENS = ScoreColumns.CONTINUATION_TOKENS;
    public static final String IS_GREEDY = ScoreColumns.IS_GREEDY;
    public static final String ERROR = ScoreColumns.ERROR;

    private Columns() {
    }
}
