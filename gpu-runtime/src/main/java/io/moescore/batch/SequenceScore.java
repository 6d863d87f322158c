package io.moescore.batch;

/**
 * The score of one sequence: the sum over positions 1..n-1 of log p(token_i | tokens before it).
 * A sequence of one token has no next token: its sum is 0 and its mean NLL and perplexity are NaN.
 * A sequence that could not be scored has {@code error} set and nothing else; so does one whose log-probs came out
 * NaN or infinite (weights loaded with allowNonfinite, an overflow): see {@link #scored}.
 *
 * <p>How every output format writes the numbers (score-local's JSON lines, the Spark job's JSON, Parquet and Arrow,
 * MoeScorer's columns), in one place: {@link #sumLogProbOrNull}, {@link #meanNllOrNull} and
 * {@link #perplexityOrNull}. {@code null} means no number: the row has an error, or (mean NLL and perplexity) there
 * is no next token. A perplexity beyond a double's range (mean NLL above ~709.78) is written as {@link #OVERFLOW},
 * the largest finite double, while the mean NLL stays exact. No NaN or infinity is ever written, so JSON output
 * stays strict JSON.
 *
 * <p>{@code argmaxTokens}: the most likely next token after each position from the one the engine was asked for
 * ({@code ScoreOptions.argmaxFrom}) to the second last, or null (what continuation scoring's {@code is_greedy}
 * compares; never written as such).
 */
public record SequenceScore(int numTokens, double sumLogProb, float[] tokenLogProbs, int[] topTokens, String error,
                            int[] argmaxTokens) {
    /** A perplexity that overflows a double, as written everywhere: 1.7976931348623157E308. */
    public static final double OVERFLOW = Double.MAX_VALUE;

    public SequenceScore(int numTokens, double sumLogProb, float[] tokenLogProbs, int[] topTokens, String error) {
        this(numTokens, sumLogProb, tokenLogProbs, topTokens, error, null);
    }

    public static SequenceScore failed(int numTokens, String error) {
        return new SequenceScore(numTokens, Double.NaN, null, null, error);
    }

    /**
     * The score of a sequence of {@code numTokens} tokens from {@code logProbs[from + p]}, the log-prob of the
     * token at position p + 1 given those before it, p = 0 .. numTokens - 2. A NaN or infinite log-prob makes it a
     * failed score whose error names the first such position (the row is kept, its numbers are null).
     *
     * @param keepPerToken keep the per-token log-probs
     * @param topTokens    the most likely next tokens after the sequence, or null
     */
    public static SequenceScore scored(int numTokens, float[] logProbs, int from, boolean keepPerToken,
                                       int[] topTokens) {
        double sum = 0;
        for (int p = 0; p < numTokens - 1; p++) {
            float lp = logProbs[from + p];
            if (!Float.isFinite(lp)) {
                return failed(numTokens, "non-finite score: the log-probability of the token at position " + (p + 1)
                        + " is " + lp + " (the first non-finite one; weights holding NaN or infinities, or an"
                        + " overflow in the forward pass): its numbers are null");
            }
            sum += lp;
        }
        float[] perToken = keepPerToken ? java.util.Arrays.copyOfRange(logProbs, from, from + numTokens - 1) : null;
        return new SequenceScore(numTokens, sum, perToken, topTokens, null);
    }

    /** This score with the most likely next tokens from some position on (a failed score stays as it is). */
    public SequenceScore withArgmaxTokens(int[] tokens) {
        return ok() ? new SequenceScore(numTokens, sumLogProb, tokenLogProbs, topTokens, null, tokens) : this;
    }

    /**
     * This score as a row's output: per-token log-probs only where asked for ({@code keepTokenLogProbs}), no argmax
     * tokens (a scorer asks the engine for both when it needs them itself, e.g. for a document's windows).
     */
    public SequenceScore trimmed(boolean keepTokenLogProbs) {
        return argmaxTokens == null && (keepTokenLogProbs || tokenLogProbs == null) ? this
                : new SequenceScore(numTokens, sumLogProb, keepTokenLogProbs ? tokenLogProbs : null, topTokens, error);
    }

    public boolean ok() {
        return error == null;
    }

    /** Mean negative log-likelihood per predicted token, NaN where nothing was predicted. */
    public double meanNll() {
        return ok() && numTokens > 1 ? -sumLogProb / (numTokens - 1) : Double.NaN;
    }

    /** exp(mean NLL), {@link #OVERFLOW} where that is beyond a double; NaN where nothing was predicted. */
    public double perplexity() {
        return Math.min(Math.exp(meanNll()), OVERFLOW);
    }

    /** sum_logprob as written: null where the row has an error (0 for one token: nothing to predict sums to 0). */
    public Double sumLogProbOrNull() {
        return ok() ? written(sumLogProb) : null;
    }

    /** mean_nll as written: null where the row has an error or no next token. */
    public Double meanNllOrNull() {
        return written(meanNll());
    }

    /** perplexity as written: null where the row has an error or no next token, {@link #OVERFLOW} past a double. */
    public Double perplexityOrNull() {
        return written(perplexity());
    }

    /** NaN: null; an infinity: the largest finite double of its sign (never reached by a scored() sum). */
    private static Double written(double v) {
        if (Double.isNaN(v)) {
            return null;
        }
        return Double.isInfinite(v) ? Math.copySign(OVERFLOW, v) : v;
    }
}
