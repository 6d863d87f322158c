package io.moescore.batch;

import java.util.List;

/**
 * Scores for every sequence of a {@link TokenBatch}, in its order, the batch's expert load, and how many times
 * the batch had to be split because the device ran out of memory.
 */
public record ScoreBatch(List<SequenceScore> scores, ExpertLoad expertLoad, int memorySplits) {
}
