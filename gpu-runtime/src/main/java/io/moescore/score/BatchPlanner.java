package io.moescore.score;

import io.moescore.batch.ExpertLoad;
import io.moescore.batch.ScoreBatch;
import io.moescore.batch.SequenceScore;
import io.moescore.batch.TokenBatch;
import io.moescore.engine.ScoreOptions;
import java.util.ArrayList;
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

    /** Scores one batch: an engine ({@code engine::score}), or a stand-in (the data-path benchmark). */
    @FunctionalInterface
    public interface Scorer {
        ScoreBatch score(TokenBatch batch, ScoreOptions options);
    }

    /** Sequences {@code from .. to} of a window as one batch (a copy, or a view of the window's buffers). */
    @FunctionalInterface
    public interface Runs {
        TokenBatch batch(int from, int to);
    }

    /**
     * Scores a window's sequences in planned batches ({@link #plan}), adding each batch's expert load to
     * {@code load}.
     *
     * @param lengths the sequences' lengths, in input order
     * @param runs    the planned runs as batches
     * @param options for the whole window ({@link ScoreOptions#slice}d per run)
     * @return one score per sequence, in input order
     */
    public static SequenceScore[] score(Scorer scorer, int[] lengths, Runs runs, ScoreOptions options,
                                        int batchTokens, ExpertLoad load) {
        SequenceScore[] scores = new SequenceScore[lengths.length];
        for (int[] planned : plan(lengths, batchTokens)) {
            int from = planned[0];
            int to = planned[planned.length - 1] + 1;
            ScoreBatch result = scorer.score(runs.batch(from, to), options.slice(from, to));
            load.add(result.expertLoad());
            for (int i = from; i < to; i++) {
                scores[i] = result.scores().get(i - from);
            }
        }
        return scores;
    }
}
