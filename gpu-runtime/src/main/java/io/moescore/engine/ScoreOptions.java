package io.moescore.engine;

import java.util.Arrays;

/**
 * What to compute beyond the per-sequence sums.
 *
 * @param tokenLogProbs keep the log-prob of every next token (n-1 floats per sequence)
 * @param topK          also return the topK most likely tokens after each sequence's last token (0: none)
 * @param argmaxFrom    per sequence of the batch, the first position p whose most likely next token is returned, for
 *                      every position p .. n-2 ({@code SequenceScore.argmaxTokens}: the greedy prediction of tokens
 *                      p+1 .. n-1, what continuation scoring's {@code is_greedy} compares); -1: none. Null: none for
 *                      any sequence. Indexed by the batch's sequences, so it belongs to one batch ({@link #slice})
 * @param tokenRouting  also return each token's chosen experts and gates per MoE layer
 *                      ({@code ScoreBatch#tokenRouting}); off, nothing is copied
 */
public record ScoreOptions(boolean tokenLogProbs, int topK, int[] argmaxFrom, boolean tokenRouting) {
    public static final ScoreOptions SUMS_ONLY = new ScoreOptions(false, 0);

    public ScoreOptions {
        if (topK < 0) {
            throw new IllegalArgumentException("top-k must be 0 or more, got " + topK);
        }
        if (argmaxFrom != null) {
            for (int p : argmaxFrom) {
                if (p < -1) {
                    throw new IllegalArgumentException("argmaxFrom holds " + p + ": a position, or -1 for none");
                }
            }
        }
    }

    public ScoreOptions(boolean tokenLogProbs, int topK) {
        this(tokenLogProbs, topK, null);
    }

    public ScoreOptions(boolean tokenLogProbs, int topK, int[] argmaxFrom) {
        this(tokenLogProbs, topK, argmaxFrom, false);
    }

    /** These options returning each token's routing too ({@code on}) or not. */
    public ScoreOptions withTokenRouting(boolean on) {
        return new ScoreOptions(tokenLogProbs, topK, argmaxFrom, on);
    }

    /** Where the most likely next tokens of sequence {@code s} start (-1: none). */
    public int argmaxFrom(int s) {
        return argmaxFrom == null ? -1 : argmaxFrom[s];
    }

    /** These options with per-token log-probs kept, and {@code argmaxFrom} for a batch's sequences (null: none). */
    public ScoreOptions withArgmaxFrom(boolean keepTokenLogProbs, int[] argmaxFrom) {
        return new ScoreOptions(keepTokenLogProbs, topK, argmaxFrom, tokenRouting);
    }

    /** These options for sequences {@code from .. to} of the batch they were made for (a run of it). */
    public ScoreOptions slice(int from, int to) {
        return argmaxFrom == null ? this
                : new ScoreOptions(tokenLogProbs, topK, Arrays.copyOfRange(argmaxFrom, from, to), tokenRouting);
    }
}
