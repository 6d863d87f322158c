package io.moescore.engine;

import java.util.List;

/** Scores for every sequence of a {@link TokenBatch}, in its order, and the batch's expert load. */
public record ScoreBatch(List<SequenceScore> scores, ExpertLoad expertLoad) {
}
