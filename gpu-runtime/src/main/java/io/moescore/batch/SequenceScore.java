package io.moescore.batch;

/**
 * The score of one sequence: the sum over positions 1..n-1 of log p(token_i | tokens before it).
 * A sequence of one token has no next token: its sum is 0 and its mean NLL and perplexity are NaN.
 * A sequence that could not be scored has {@code error} set and nothing else.
 */
public record SequenceScore(int numTokens, double sumLogProb, float[] tokenLogProbs, int[] topTokens, String error) {
    public static SequenceScore failed(int numTokens, String error) {
        return new SequenceScore(numTokens, Double.NaN, null, null, error);
    }

    public boolean ok() {
        return error == null;
    }

    /** Mean negative log-likelihood per predicted token, NaN where nothing was predicted. */
    public double meanNll() {
        return ok() && numTokens > 1 ? -sumLogProb / (numTokens - 1) : Double.NaN;
    }

    public double perplexity() {
        return Math.exp(meanNll());
    }
}
