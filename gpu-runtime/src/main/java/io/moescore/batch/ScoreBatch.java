package io.moescore.batch;

import java.util.List;

/**
 * Scores for every sequence of a {@link TokenBatch}, in its order, the batch's expert load, and how many times
 * the batch had to be split because the device ran out of memory; each token's routing where it was asked for
 * ({@link TokenRouting}, by the batch's sequence indices), else null.
 */
public record ScoreBatch(List<SequenceScore> scores, ExpertLoad expertLoad, int memorySplits,
                         TokenRouting tokenRouting) {
    public ScoreBatch(List<SequenceScore> scores, ExpertLoad expertLoad, int memorySplits) {
        this(scores, expertLoad, memorySplits, null);
    }
}
