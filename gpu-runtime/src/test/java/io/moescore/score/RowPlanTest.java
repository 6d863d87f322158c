package io.moescore.score;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.moescore.TestModels;
import io.moescore.backend.cpu.CpuBackend;
import io.moescore.batch.ExpertLoad;
import io.moescore.batch.RowScore;
import io.moescore.batch.SequenceScore;
import io.moescore.batch.TokenBatch;
import io.moescore.engine.Engine;
import io.moescore.engine.ScoreOptions;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Long rows and continuation rows on the CPU engine, held against the engine scoring the pieces itself: a strided
 * row's numbers are the sums of each window's right positions (windows written out here as Hugging Face's recipe
 * loops, not taken from {@link RowPlan#windows}); a truncated row is its first context tokens; a continuation's
 * log-prob is the sum of those positions of the plain score of context + continuation, and is_greedy agrees with
 * the top-1 token after each prefix, scored alone. A row that fits is scored bit for bit as without a plan.
 */
class RowPlanTest {
    static final Path MODEL = TestModels.hfFixtures().stream().filter(p -> p.endsWith("olmoe-fp32")).findFirst()
            .orElseThrow();
    static CpuBackend backend;
    static Engine engine;
    static int context;
    static long seed;
    static Random random;

    @BeforeAll
    static void start() {
        backend = new CpuBackend(2);
        engine = Engine.load(MODEL, backend);
        context = engine.config().maxPositions();
        seed = System.nanoTime();
        System.out.println("RowPlanTest seed " + seed);
        random = new Random(seed);
    }

    @AfterAll
    static void stop() {
        engine.close();
        backend.close();
    }

    static int[] randomTokens(int n) {
        int[] t = new int[n];
        for (int i = 0; i < n; i++) {
            t[i] = random.nextInt(engine.config().vocabSize());
        }
        return t;
    }

    static RowScore[] score(int[][] rows, int[] contextLengths, RowPlan.Limits limits, ScoreOptions options,
                            int batchTokens) {
        return RowPlan.score(engine::score, rows, contextLengths, limits, options, batchTokens,
                new ExpertLoad(engine.config().numLayers(), engine.config().numExperts()));
    }

    static SequenceScore alone(int[] tokens, ScoreOptions options) {
        return engine.score(TokenBatch.of(tokens), options).scores().get(0);
    }

    @Test
    void windowsScoreEveryTokenButTheFirstOnceWithContextMinusStrideBeforeIt() {
        assertEquals(List.of(new RowPlan.Window(0, 4, 1), new RowPlan.Window(2, 6, 4), new RowPlan.Window(4, 8, 6),
                new RowPlan.Window(6, 10, 8)), RowPlan.windows(10, 4, 2));
        assertEquals(List.of(new RowPlan.Window(0, 7, 1)), RowPlan.windows(7, 8, 3), "a row that fits: itself");
        for (int trial = 0; trial < 500; trial++) {
            int c = 2 + random.nextInt(60);
            int s = 1 + random.nextInt(c - 1);
            int n = 1 + random.nextInt(300);
            int[] scored = new int[n];
            List<RowPlan.Window> windows = RowPlan.windows(n, c, s);
            for (int w = 0; w < windows.size(); w++) {
                RowPlan.Window win = windows.get(w);
                String where = "seed " + seed + " n " + n + " c " + c + " s " + s + " window " + w;
                assertEquals(w * s, win.begin(), where);
                assertEquals(Math.min(win.begin() + c, n), win.end(), where);
                assertTrue(win.firstScored() > win.begin(), where + ": a scored token has one before it");
                if (w > 0) {
                    assertEquals(windows.get(w - 1).end(), win.firstScored(), where);
                    assertEquals(c - s, win.firstScored() - win.begin(), where + ": context - stride before");
                }
                for (int t = win.firstScored(); t < win.end(); t++) {
                    scored[t]++;
                }
            }
            assertEquals(n, windows.get(windows.size() - 1).end(), "the last window reaches the end");
            assertEquals(0, scored[0], "the first token is never scored");
            for (int t = 1; t < n; t++) {
                assertEquals(1, scored[t], "token " + t + " scored once, seed " + seed);
            }
        }
        assertThrows(IllegalArgumentException.class, () -> RowPlan.windows(10, 4, 4));
    }

    /** Hugging Face's loop, written out: the sum and per-token log-probs of a long row's scored positions. */
    static float[] stridedByHand(int[] row, int stride) {
        float[] lp = new float[row.length - 1];
        int prevEnd = 0;
        for (int begin = 0; begin < row.length; begin += stride) {
            int end = Math.min(begin + context, row.length);
            int trgLen = end - prevEnd;
            SequenceScore window = alone(Arrays.copyOfRange(row, begin, end), new ScoreOptions(true, 0));
            // the window's last trgLen tokens are targets; its first token never is
            for (int t = Math.max(end - trgLen, begin + 1); t < end; t++) {
                lp[t - 1] = window.tokenLogProbs()[t - begin - 1];
            }
            prevEnd = end;
            if (end == row.length) {
                break;
            }
        }
        return lp;
    }

    @Test
    void aStridedRowIsTheSumOfItsWindowsRightPositions() {
        int stride = 100;
        int[] longRow = randomTokens(2 * context + 37);
        int[] shortRow = randomTokens(40);
        ScoreOptions options = new ScoreOptions(true, 3);
        RowScore[] rows = score(new int[][] {shortRow, longRow, null}, null,
                new RowPlan.Limits(LongRows.STRIDE, context, stride), options, 300);
        assertNull(rows[2], "a row without tokens is left to its caller");
        RowScore got = rows[1];
        assertNull(got.error());
        float[] expected = stridedByHand(longRow, stride);
        assertArrayEquals(expected, got.score().tokenLogProbs(), "each token's log-prob from its window");
        double sum = 0;
        for (float f : expected) {
            sum += f;
        }
        assertEquals(sum, got.score().sumLogProb(), 0.0, "summed in document order, bit for bit");
        assertEquals(longRow.length, got.score().numTokens());
        assertEquals(Math.exp(-sum / (longRow.length - 1)), got.score().perplexity(), 1e-12);
        int windows = 1 + (longRow.length - context + stride - 1) / stride;
        assertEquals(windows, got.numWindows());
        assertFalse(got.truncated());
        int lastBegin = (windows - 1) * stride;
        assertArrayEquals(alone(Arrays.copyOfRange(longRow, lastBegin, longRow.length), options).topTokens(),
                got.score().topTokens(), "top tokens after the document's last token, in its last window");
        SequenceScore plain = alone(shortRow, options);
        assertArrayEquals(plain.tokenLogProbs(), rows[0].score().tokenLogProbs(), "a row that fits: as alone");
        assertEquals(plain.sumLogProb(), rows[0].score().sumLogProb(), 0.0);
        assertEquals(1, rows[0].numWindows());

        RowScore sumsOnly = score(new int[][] {longRow}, null, new RowPlan.Limits(LongRows.STRIDE, context, stride),
                ScoreOptions.SUMS_ONLY, 8192)[0];
        assertNull(sumsOnly.score().tokenLogProbs(), "per-token log-probs only where asked for");
        assertNull(sumsOnly.score().topTokens());
        assertEquals(sum, sumsOnly.score().sumLogProb(), 0.0, "whatever the batches");
    }

    @Test
    void truncationScoresTheFirstContextTokensAndErrorModeRefusesTheRow() {
        int[] longRow = randomTokens(context + 20);
        ScoreOptions options = new ScoreOptions(true, 0);
        RowScore cut = score(new int[][] {longRow}, null, new RowPlan.Limits(LongRows.TRUNCATE, context, 1),
                options, 8192)[0];
        SequenceScore first = alone(Arrays.copyOf(longRow, context), options);
        assertTrue(cut.truncated());
        assertEquals(1, cut.numWindows());
        assertEquals(context, cut.score().numTokens());
        assertArrayEquals(first.tokenLogProbs(), cut.score().tokenLogProbs());
        assertEquals(first.sumLogProb(), cut.score().sumLogProb(), 0.0);
        RowScore refused = score(new int[][] {longRow}, null, new RowPlan.Limits(LongRows.ERROR, context, 1),
                options, 8192)[0];
        assertTrue(refused.error().contains("longer than the model's max_position_embeddings"), refused.error());
        assertEquals(0, refused.numWindows());
    }

    @Test
    void continuationLogProbIsTheSumOfItsPositionsAndGreedyAgreesWithTopOneAfterEachPrefix() {
        int[] ctx = randomTokens(30);
        // a greedy continuation: each token the top-1 after everything before it, scored alone
        int[] greedy = new int[6];
        int[] prefix = ctx;
        for (int j = 0; j < greedy.length; j++) {
            greedy[j] = alone(prefix, new ScoreOptions(false, 1)).topTokens()[0];
            prefix = Continuations.ofTokens(prefix, new int[] {greedy[j]}).tokens();
        }
        int[] notGreedy = greedy.clone();
        notGreedy[3] = (greedy[3] + 1) % engine.config().vocabSize();
        int[] random5 = randomTokens(5);
        int[][] conts = {greedy, notGreedy, random5};
        int[][] rows = new int[conts.length + 1][];
        int[] contextLengths = new int[conts.length + 1];
        for (int i = 0; i < conts.length; i++) {
            rows[i] = Continuations.ofTokens(ctx, conts[i]).tokens();
            contextLengths[i] = ctx.length;
        }
        rows[conts.length] = randomTokens(12);  // a plain row among them
        contextLengths[conts.length] = -1;
        RowScore[] got = score(rows, contextLengths, new RowPlan.Limits(LongRows.ERROR, context, 1),
                new ScoreOptions(false, 2), 8192);
        for (int i = 0; i < conts.length; i++) {
            SequenceScore plain = alone(rows[i], new ScoreOptions(true, 2));
            double sum = 0;
            for (int j = 0; j < conts[i].length; j++) {
                sum += plain.tokenLogProbs()[ctx.length - 1 + j];
            }
            RowScore r = got[i];
            assertNull(r.error());
            assertEquals(conts[i].length, r.continuationTokens());
            assertEquals(sum, r.continuationLogProbOrNull(), 0.0, "continuation " + i);
            assertEquals(plain.sumLogProb(), r.score().sumLogProb(), 0.0, "the whole sequence's sum as well");
            assertArrayEquals(plain.topTokens(), r.score().topTokens());
            assertNull(r.score().tokenLogProbs(), "not asked for");
            assertFalse(r.truncated());
        }
        assertEquals(true, got[0].isGreedyOrNull(), "a continuation made of top-1 tokens is greedy");
        assertEquals(false, got[1].isGreedyOrNull(), "one token changed: not greedy");
        boolean randomGreedy = true;
        prefix = ctx;
        for (int t : random5) {
            randomGreedy &= alone(prefix, new ScoreOptions(false, 1)).topTokens()[0] == t;
            prefix = Continuations.ofTokens(prefix, new int[] {t}).tokens();
        }
        assertEquals(randomGreedy, got[2].isGreedyOrNull());
        assertNull(got[3].continuation(), "a plain row has no continuation");
        assertNull(got[3].isGreedyOrNull());
    }

    @Test
    void theEngineGivesTheArgmaxAfterEveryPositionAskedFor() {
        int[] a = randomTokens(20);
        int[] b = randomTokens(9);
        SequenceScore[] scores = engine.score(TokenBatch.of(a, b), new ScoreOptions(false, 4, new int[] {5, -1}))
                .scores().toArray(SequenceScore[]::new);
        assertNull(scores[1].argmaxTokens());
        assertEquals(a.length - 1 - 5, scores[0].argmaxTokens().length);
        for (int j = 0; j < scores[0].argmaxTokens().length; j++) {
            int p = 5 + j;
            assertEquals(alone(Arrays.copyOf(a, p + 1), new ScoreOptions(false, 1)).topTokens()[0],
                    scores[0].argmaxTokens()[j], "argmax after position " + p);
        }
        SequenceScore without = engine.score(TokenBatch.of(a, b), new ScoreOptions(false, 4)).scores().get(0);
        assertArrayEquals(without.topTokens(), scores[0].topTokens(), "top-k unchanged by the argmax rows");
        assertEquals(without.sumLogProb(), scores[0].sumLogProb(), 0.0);
    }

    @Test
    void aLongContinuationIsCutFromTheLeftAndOneThatCannotFitIsAnError() {
        int[] ctx = randomTokens(context + 10);
        int[] cont = randomTokens(4);
        int[] row = Continuations.ofTokens(ctx, cont).tokens();
        int[] tooLong = Continuations.ofTokens(randomTokens(3), randomTokens(context)).tokens();
        RowScore[] got = score(new int[][] {row, tooLong}, new int[] {ctx.length, 3},
                new RowPlan.Limits(LongRows.STRIDE, context, 50), new ScoreOptions(false, 0), 8192);
        int[] kept = Arrays.copyOfRange(row, row.length - context, row.length);
        SequenceScore plain = alone(kept, new ScoreOptions(true, 0));
        double sum = 0;
        for (int j = 0; j < cont.length; j++) {
            sum += plain.tokenLogProbs()[context - cont.length - 1 + j];
        }
        assertTrue(got[0].truncated());
        assertEquals(context, got[0].score().numTokens());
        assertEquals(sum, got[0].continuationLogProbOrNull(), 0.0);
        assertTrue(got[1].error().contains("continuation of " + context + " tokens does not fit"), got[1].error());
        RowScore refused = score(new int[][] {row}, new int[] {ctx.length},
                new RowPlan.Limits(LongRows.ERROR, context, 1), new ScoreOptions(false, 0), 8192)[0];
        assertTrue(refused.error().contains("max_position_embeddings"), refused.error());
        assertNull(refused.continuationLogProbOrNull());
        assertNull(refused.isGreedyOrNull());
    }

    @Test
    void scoresDoNotDependOnTheBatchesTheirSequencesShare() {
        List<int[]> rows = new ArrayList<>();
        List<Integer> contexts = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
            int kind = random.nextInt(3);
            if (kind == 0) {
                rows.add(randomTokens(1 + random.nextInt(2 * context)));
                contexts.add(-1);
            } else {
                int c = 1 + random.nextInt(40);
                rows.add(randomTokens(c + 1 + random.nextInt(10)));
                contexts.add(c);
            }
        }
        int[][] r = rows.toArray(int[][]::new);
        int[] c = contexts.stream().mapToInt(Integer::intValue).toArray();
        RowPlan.Limits limits = new RowPlan.Limits(LongRows.STRIDE, context, 64);
        RowScore[] big = score(r, c, limits, new ScoreOptions(true, 2), 8192);
        RowScore[] small = score(r, c, limits, new ScoreOptions(true, 2), 1);
        for (int i = 0; i < r.length; i++) {
            assertArrayEquals(big[i].score().tokenLogProbs(), small[i].score().tokenLogProbs(), "row " + i + " seed "
                    + seed);
            assertEquals(big[i].score().sumLogProb(), small[i].score().sumLogProb(), 0.0);
            assertEquals(big[i].continuationLogProbOrNull(), small[i].continuationLogProbOrNull());
            assertEquals(big[i].isGreedyOrNull(), small[i].isGreedyOrNull());
            assertEquals(big[i].numWindows(), small[i].numWindows());
        }
    }
}
