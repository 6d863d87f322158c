package io.moescore.batch;

/**
 * The score of one input row, as every output writes it: its {@link SequenceScore} (over the whole document: a
 * long row scored in windows has one, assembled from theirs), the windows it took, whether it was cut to the
 * model's context, and for a continuation row what scoring the continuation gave.
 *
 * @param numWindows   the windows the row was scored in: 1 where it fits, 0 where it was not scored at all
 * @param truncated    the row was cut to the model's context (its score is that of the tokens kept)
 * @param continuation the continuation's numbers, or null for a row without one (or whose input was unusable)
 */
public record RowScore(SequenceScore score, int numWindows, boolean truncated, Continuation continuation) {
    /**
     * A continuation's numbers.
     *
     * @param numTokens the continuation's tokens
     * @param logProb   the sum of their log-probs given everything before each (NaN where the row has an error)
     * @param greedy    whether each of them is the model's most likely next token there
     */
    public record Continuation(int numTokens, double logProb, boolean greedy) {
    }

    /** A row scored as one sequence, itself. */
    public static RowScore of(SequenceScore score) {
        return new RowScore(score, score.ok() ? 1 : 0, false, null);
    }

    /** A row that could not be scored. */
    public static RowScore failed(int numTokens, String error) {
        return new RowScore(SequenceScore.failed(numTokens, error), 0, false, null);
    }

    public boolean ok() {
        return score.ok();
    }

    public String error() {
        return score.error();
    }

    /** continuation_tokens as written: 0 for a row without a usable continuation. */
    public int continuationTokens() {
        return continuation == null ? 0 : continuation.numTokens();
    }

    /** continuation_logprob as written: null where the row has an error or no continuation. */
    public Double continuationLogProbOrNull() {
        return ok() && continuation != null ? continuation.logProb() : null;
    }

    /** is_greedy as written: null where the row has an error or no continuation. */
    public Boolean isGreedyOrNull() {
        return ok() && continuation != null ? continuation.greedy() : null;
    }
}
