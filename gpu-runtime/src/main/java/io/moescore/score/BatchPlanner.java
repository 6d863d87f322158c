package io.moescore.score;

import io.moescore.batch.ExpertLoad;
import io.moescore.batch.ScoreBatch;
import io.moescore.batch.SequenceScore;
import io.moescore.batch.TokenBatch;
import io.moescore.engine.Engine;
import io.moescore.engine.ScoreOptions;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The batching of every scorer (score-local's {@link LocalScorer} and the Spark job's partition scorer): rows are
 * read a window at a time ({@link #windowFull}: about {@value #WINDOW_BATCHES} batches' worth of tokens), and the
 * window's rows are scored in runs of consecutive rows of at most {@code batchTokens} tokens (a longer row gets a
 * batch of its own), so that a batch is a slice of the window's token buffer (the columnar Spark path hands it to
 * the engine without a copy) and the scores come back in input order. The engine packs a batch's sequences
 * without padding, so ordering rows by length would buy nothing. Scores do not depend on the plan: the CPU engine
 * is batch-invariant, and so is the GPU in deterministic mode.
 */
public final class BatchPlanner {
    /** Rows read ahead are bounded by this many batches' worth of tokens (plus one row). */
    public static final int WINDOW_BATCHES = 4;

    private BatchPlanner() {
    }

    /** Whether a window holding {@code tokens} tokens is full: read no more rows into it. */
    public static boolean windowFull(long tokens, int batchTokens) {
        return tokens >= (long) batchTokens * WINDOW_BATCHES;
    }

    /**
     * The batches of sequences of these lengths: runs of consecutive indices into {@code lengths}, each at most
     * {@code batchTokens} tokens unless it is one longer sequence.
     */
    public static List<int[]> plan(int[] lengths, int batchTokens) {
        List<int[]> batches = new ArrayList<>();
        int from = 0;
        while (from < lengths.length) {
            int to = from;
            long tokens = 0;
            while (to < lengths.length && (to == from || tokens + lengths[to] <= batchTokens)) {
                tokens += lengths[to];
                to++;
            }
            batches.add(java.util.stream.IntStream.range(from, to).toArray());
            from = to;
        }
        return batches;
    }

    /**
     * Scores a window's sequences in planned batches, adding each batch's expert load to {@code load}.
     *
     * @param sequences the window's token sequences in input order; null for a row that is not scored
     * @return one score per sequence, in input order (null where the sequence was null)
     */
    public static SequenceScore[] score(Engine engine, List<int[]> sequences, ScoreOptions options, int batchTokens,
                                        ExpertLoad load) {
        SequenceScore[] scores = new SequenceScore[sequences.size()];
        List<Integer> scorable = new ArrayList<>();
        for (int i = 0; i < sequences.size(); i++) {
            if (sequences.get(i) != null) {
                scorable.add(i);
            }
        }
        int[] lengths = scorable.stream().mapToInt(i -> sequences.get(i).length).toArray();
        for (int[] batch : plan(lengths, batchTokens)) {
            int[][] tokens = new int[batch.length][];
            for (int j = 0; j < batch.length; j++) {
                tokens[j] = sequences.get(scorable.get(batch[j]));
            }
            ScoreBatch result = engine.score(TokenBatch.of(tokens), options);
            load.add(result.expertLoad());
            for (int j = 0; j < batch.length; j++) {
                scores[scorable.get(batch[j])] = result.scores().get(j);
            }
        }
        return scores;
    }
}
