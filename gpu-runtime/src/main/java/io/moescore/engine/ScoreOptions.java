package io.moescore.engine;

/**
 * What to compute beyond the per-sequence sums.
 *
 * @param tokenLogProbs keep the log-prob of every next token (n-1 floats per sequence)
 * @param topK          also return the topK most likely tokens after each sequence's last token (0: none)
 */
public record ScoreOptions(boolean tokenLogProbs, int topK) {
    public static final ScoreOptions SUMS_ONLY = new ScoreOptions(false, 0);

    public ScoreOptions {
        if (topK < 0) {
            throw new IllegalArgumentException("top-k must be 0 or more, got " + topK);
        }
    }
}
