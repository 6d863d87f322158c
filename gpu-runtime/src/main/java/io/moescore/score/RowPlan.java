package io.moescore.score;

import io.moescore.batch.ExpertLoad;
import io.moescore.batch.RowScore;
import io.moescore.batch.SequenceScore;
import io.moescore.batch.TokenBatch;
import io.moescore.engine.ScoreOptions;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * How input rows become the engine's sequences, and those sequences' scores the rows' ({@link RowScore}); one plan
 * for score-local and the Spark job:
 * <ul>
 *   <li>a row that fits the model's context, or any row under {@link LongRows#ERROR}: one sequence, itself (the
 *       engine refuses one that is too long), scored exactly as without a plan;</li>
 *   <li>a longer row under {@link LongRows#TRUNCATE}: its first {@code context} tokens, {@code truncated};</li>
 *   <li>a longer row under {@link LongRows#STRIDE}: Hugging Face's strided perplexity ({@link #windows}), one
 *       sequence per window; the row's per-token log-probs are each window's scored positions end to end, so
 *       {@code num_tokens}, {@code sum_logprob}, {@code mean_nll} and {@code perplexity} are the whole
 *       document's (n - 1 tokens predicted, the first never), and its top tokens those after its last token;</li>
 *   <li>a continuation row ({@link Continuations.Pair}): one sequence, context then continuation, with the most
 *       likely next token asked for at every continuation position; {@code continuation_logprob} sums the
 *       continuation tokens' log-probs, {@code is_greedy} says whether each was the most likely. Longer than the
 *       context under TRUNCATE or STRIDE, it is cut from the left to the last {@code context} tokens, as
 *       lm-evaluation-harness cuts it ({@code truncated}; lm-evaluation-harness feeds the model one token more of
 *       context there, since it never feeds the last token); a continuation that does not fit with at least one
 *       token of context is an error.</li>
 * </ul>
 * The sequences are scored in {@link BatchPlanner}'s runs, so a window or continuation shares batches with other
 * rows; the CPU engine (and the GPU in deterministic mode) gives each sequence the same scores whatever it shares a
 * batch with.
 */
public final class RowPlan {
    /**
     * What a scorer knows of long rows: the policy, the model's context and the stride of its windows.
     *
     * @param context the model's {@code max_position_embeddings}
     * @param stride  tokens each window starts after the one before, below the context under STRIDE
     */
    public record Limits(LongRows mode, int context, int stride) {
        /** No row is too long: a scorer without a model (the data-path benchmark). */
        public static final Limits NONE = new Limits(LongRows.ERROR, Integer.MAX_VALUE, 1);

        public Limits {
            if (context < 1 || stride < 1) {
                throw new IllegalArgumentException("context " + context + " and stride " + stride
                        + " must be at least 1");
            }
            if (mode == LongRows.STRIDE && stride >= context) {
                throw new IllegalArgumentException("stride " + stride + " is not below the context of " + context
                        + " tokens");
            }
        }

        /** Whether a row of {@code length} tokens is scored as itself. */
        boolean fits(int length) {
            return length <= context || mode == LongRows.ERROR;
        }
    }

    /**
     * One window of a long row: its tokens {@code [begin, end)}, of which those from {@code firstScored} on are
     * scored (each given the window's tokens before it).
     */
    public record Window(int begin, int end, int firstScored) {
    }

    /**
     * Hugging Face's strided-perplexity windows over a row of {@code n} tokens: window i starts at
     * {@code begin = i * stride} and ends at {@code end = min(begin + context, n)}; it scores its last
     * {@code end - prevEnd} tokens ({@code prevEnd}: the end of the window before, 0 for the first, whose first token
     * has nothing before it and is never scored); the last window is the first to reach n. So tokens 1 .. n-1 are each
     * scored once, after the first window with {@code context - stride} tokens of its window before it (fewer only
     * in the last window: none). A row that fits is one window, itself.
     */
    public static List<Window> windows(int n, int context, int stride) {
        if (stride < 1 || (n > context && stride >= context)) {
            throw new IllegalArgumentException("stride " + stride + " must be 1 to " + (context - 1));
        }
        List<Window> windows = new ArrayList<>();
        int prevEnd = 0;
        for (int begin = 0; ; begin += stride) {
            int end = Math.min(begin + context, n);
            windows.add(new Window(begin, end, Math.max(prevEnd, begin + 1)));
            prevEnd = end;
            if (end >= n) {
                return windows;
            }
        }
    }

    private enum Kind { SKIPPED, FAILED, WHOLE, TRUNCATED, STRIDED, CONTINUATION }

    private final int[][] rows;
    private final Kind[] kinds;
    private final String[] errors;
    /** Per row: its first sequence; rows + 1 entries (a row's sequences are consecutive). */
    private final int[] firstSequence;
    /** Per continuation row: its context's tokens in its sequence (after a cut from the left). */
    private final int[] contextLength;
    private final boolean[] cutLeft;
    private final List<int[]> sequences = new ArrayList<>();
    private final List<Window> spans = new ArrayList<>();
    private final List<Integer> argmaxFrom = new ArrayList<>();

    /**
     * @param rows           each row's tokens; null for a row that is not scored (its reader has its error)
     * @param contextLengths per row, how many of its tokens are a continuation row's context ({@link
     *                       Continuations.Pair}), -1 for a row without; null: no row has one
     */
    RowPlan(int[][] rows, int[] contextLengths, Limits limits) {
        int n = rows.length;
        this.rows = rows;
        this.kinds = new Kind[n];
        this.errors = new String[n];
        this.firstSequence = new int[n + 1];
        this.contextLength = new int[n];
        this.cutLeft = new boolean[n];
        for (int r = 0; r < n; r++) {
            firstSequence[r] = sequences.size();
            int[] row = rows[r];
            int c = contextLengths == null ? -1 : contextLengths[r];
            if (row == null) {
                kinds[r] = Kind.SKIPPED;
            } else if (c >= 0) {
                planContinuation(r, row, c, limits);
            } else if (limits.fits(row.length)) {
                kinds[r] = Kind.WHOLE;
                add(row, new Window(0, row.length, 1), -1);
            } else if (limits.mode() == LongRows.TRUNCATE) {
                kinds[r] = Kind.TRUNCATED;
                add(Arrays.copyOf(row, limits.context()), new Window(0, limits.context(), 1), -1);
            } else {
                kinds[r] = Kind.STRIDED;
                for (Window w : windows(row.length, limits.context(), limits.stride())) {
                    add(Arrays.copyOfRange(row, w.begin(), w.end()), w, -1);
                }
            }
        }
        firstSequence[n] = sequences.size();
    }

    private void planContinuation(int r, int[] row, int c, Limits limits) {
        kinds[r] = Kind.CONTINUATION;
        int drop = limits.fits(row.length) ? 0 : row.length - limits.context();
        if (c - drop < 1) {
            kinds[r] = Kind.FAILED;
            errors[r] = "continuation of " + (row.length - c) + " tokens does not fit the model's context of "
                    + limits.context() + " tokens with a token of context before it";
            return;
        }
        contextLength[r] = c - drop;
        cutLeft[r] = drop > 0;
        int[] sequence = drop == 0 ? row : Arrays.copyOfRange(row, drop, row.length);
        // the most likely next token after each position from the context's last on: the continuation's tokens
        add(sequence, new Window(drop, row.length, drop + 1), c - drop - 1);
    }

    private void add(int[] sequence, Window span, int argmax) {
        sequences.add(sequence);
        spans.add(span);
        argmaxFrom.add(argmax);
    }

    /** Whether every row is one sequence, itself, with nothing more to ask of the engine. */
    boolean identity() {
        for (Kind k : kinds) {
            if (k != Kind.WHOLE && k != Kind.SKIPPED) {
                return false;
            }
        }
        return true;
    }

    /**
     * Whether rows of these lengths (with continuation rows where {@code continuations}) are scored each as itself:
     * then a scorer may hand the engine its rows as they are (the Spark job's windows of Arrow buffers), and
     * {@link RowScore#of} each score.
     */
    public static boolean identity(int[] lengths, boolean continuations, Limits limits) {
        if (continuations) {
            return false;
        }
        for (int length : lengths) {
            if (!limits.fits(length)) {
                return false;
            }
        }
        return true;
    }

    /**
     * Scores rows as this class says, in {@link BatchPlanner}'s runs of their sequences.
     *
     * @param rows           each row's tokens; null for a row the caller has an error for (its result is null)
     * @param contextLengths per row, its context's length for a continuation row, -1 for another; null: none
     * @param options        what the rows' output holds (per-token log-probs, top-k)
     * @return one score per row, in order
     */
    public static RowScore[] score(BatchPlanner.Scorer scorer, int[][] rows, int[] contextLengths, Limits limits,
                                   ScoreOptions options, int batchTokens, ExpertLoad load) {
        RowPlan plan = new RowPlan(rows, contextLengths, limits);
        int[][] sequences = plan.sequences.toArray(int[][]::new);
        int[] lengths = Arrays.stream(sequences).mapToInt(s -> s.length).toArray();
        // windows and continuations need every per-token log-prob, continuations the argmax tokens too
        ScoreOptions engine = plan.identity() ? options : options.withArgmaxFrom(true,
                plan.argmaxFrom.stream().mapToInt(Integer::intValue).toArray());
        SequenceScore[] scores = BatchPlanner.score(scorer, lengths,
                (from, to) -> TokenBatch.of(Arrays.copyOfRange(sequences, from, to)), engine, batchTokens, load);
        return plan.combine(scores, options.tokenLogProbs());
    }

    /**
     * Per sequence that {@link #score} scores for these rows (same arguments), in order: the row it belongs to (a long
     * row's windows are consecutive sequences of that row; a row not scored has none). Plans the rows again: for a
     * caller that must tell sequences' rows apart (the Spark job's token routing trace).
     */
    public static int[] sequenceRows(int[][] rows, int[] contextLengths, Limits limits) {
        RowPlan plan = new RowPlan(rows, contextLengths, limits);
        int[] out = new int[plan.sequences.size()];
        for (int r = 0; r < rows.length; r++) {
            Arrays.fill(out, plan.firstSequence[r], plan.firstSequence[r + 1], r);
        }
        return out;
    }

    /** The rows' scores from their sequences' ({@code scores[i]}: sequence i's), in row order. */
    RowScore[] combine(SequenceScore[] scores, boolean keepTokenLogProbs) {
        RowScore[] out = new RowScore[rows.length];
        for (int r = 0; r < rows.length; r++) {
            int first = firstSequence[r];
            out[r] = switch (kinds[r]) {
                case SKIPPED -> null;
                case FAILED -> RowScore.failed(rows[r].length, errors[r]);
                case WHOLE -> RowScore.of(scores[first].trimmed(keepTokenLogProbs));
                case TRUNCATED -> {
                    SequenceScore s = scores[first].trimmed(keepTokenLogProbs);
                    yield new RowScore(s, s.ok() ? 1 : 0, true, null);
                }
                case STRIDED -> strided(r, scores, keepTokenLogProbs);
                case CONTINUATION -> continuation(r, scores[first], keepTokenLogProbs);
            };
        }
        return out;
    }

    /** A long row from its windows: each window's scored positions, end to end, as one sequence's log-probs. */
    private RowScore strided(int r, SequenceScore[] scores, boolean keepTokenLogProbs) {
        int n = rows[r].length;
        int count = firstSequence[r + 1] - firstSequence[r];
        float[] logProbs = new float[n - 1];
        int[] top = null;
        for (int w = 0; w < count; w++) {
            SequenceScore s = scores[firstSequence[r] + w];
            Window span = spans.get(firstSequence[r] + w);
            if (!s.ok()) {
                return RowScore.failed(n, "window " + (w + 1) + " of " + count + " (tokens " + span.begin() + " to "
                        + (span.end() - 1) + "): " + s.error());
            }
            // the window's log-prob p is that of its token p + 1, the row's token begin + p + 1
            for (int t = span.firstScored(); t < span.end(); t++) {
                logProbs[t - 1] = s.tokenLogProbs()[t - span.begin() - 1];
            }
            top = s.topTokens();
        }
        SequenceScore whole = SequenceScore.scored(n, logProbs, 0, keepTokenLogProbs, top);
        return new RowScore(whole, whole.ok() ? count : 0, false, null);
    }

    /** A continuation row: the sum of its continuation tokens' log-probs, and whether each was the argmax. */
    private RowScore continuation(int r, SequenceScore s, boolean keepTokenLogProbs) {
        int[] sequence = sequences.get(firstSequence[r]);
        int c = contextLength[r];
        int k = sequence.length - c;
        if (!s.ok()) {
            return new RowScore(s.trimmed(keepTokenLogProbs), 0, cutLeft[r],
                    new RowScore.Continuation(k, Double.NaN, false));
        }
        double sum = 0;
        boolean greedy = true;
        for (int j = 0; j < k; j++) {
            sum += s.tokenLogProbs()[c - 1 + j];  // log p(token c + j | tokens before it)
            greedy &= s.argmaxTokens()[j] == sequence[c + j];
        }
        return new RowScore(s.trimmed(keepTokenLogProbs), 1, cutLeft[r], new RowScore.Continuation(k, sum, greedy));
    }
}
