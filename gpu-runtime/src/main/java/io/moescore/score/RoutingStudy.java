package io.moescore.score;

import io.moescore.backend.Backend;
import io.moescore.batch.ExpertLoad;
import io.moescore.batch.RowScore;
import io.moescore.engine.Engine;
import io.moescore.engine.ModelWeights;
import io.moescore.engine.ScoreOptions;
import io.moescore.engine.UnsupportedModelException;
import io.moescore.model.Checkpoint;
import io.moescore.model.ModelConfig;
import io.moescore.routing.RoutingSpec;
import java.io.IOException;
import java.io.PrintStream;
import java.math.BigDecimal;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.IntStream;

/**
 * {@code moescore routing-study}'s measurements: the input read (and tokenized) once, then scored once per router
 * variant, the model's own router first as the baseline, on one backend. The weights are loaded once and shared by
 * one {@link Engine} per variant (an engine is its routers over the weights; only the weights own memory). Every
 * variant is checked against the model and the backend before any weight loads, so a bad one costs nothing.
 *
 * <p>Per variant ({@link Variant}): the perplexity over every token predicted in rows scored without error, its ratio
 * to the baseline's, the expert FLOPs executed relative to the baseline (routed token-expert pairs summed over the MoE
 * layers, from the engine's expert load: each pair is one expert FFN of one token, the same work in every layer;
 * shared experts and dense MLPs are the same in every variant and not counted), tokens/s of its scoring, and the rows
 * whose most likely next token after the last position differs from the baseline's.
 */
public final class RoutingStudy {
    /** The report's note on what the expert FLOPs count (both forms of the study). */
    public static final String FLOPS_NOTE = "expert FLOPs: token-expert pairs routed, summed over the MoE layers, "
            + "relative to the model's own router (each pair is one expert FFN of one token); shared experts, "
            + "attention and dense layers are the same in every variant and not counted";
    /** The report's note where a variant's scores depend on batch composition. */
    public static final String BATCH_DEPENDENT_NOTE = "batch-dependent variants: their scores depend on the rows "
            + "batched together (--batch-tokens)";
    /** The proposed drop-experts file's name in the output folder ({@code --propose-drops}). */
    public static final String PROPOSED_DROPS = "proposed_drops.json";

    /**
     * One variant's numbers.
     *
     * @param spec            the variant as a --routing SPEC
     * @param batchDependent  its scores depend on the rows batched together ({@link RoutingSpec#dependsOnBatch})
     * @param rowErrors       rows with an error (unusable input, or a score that came out non-finite)
     * @param predicted       tokens predicted in the rows without error (n - 1 per row of n)
     * @param perplexity      exp(mean NLL over those tokens); NaN where none
     * @param perplexityRatio perplexity / the baseline's
     * @param routedPairs     token-expert pairs routed, summed over the MoE layers
     * @param expertFlopShare routedPairs / the baseline's; NaN where the baseline routed none (no expert load known)
     * @param seconds         wall time of its scoring
     * @param tokensPerSecond input tokens / seconds
     * @param speedup         tokensPerSecond / the baseline's
     * @param top1Compared    rows scored without error by it and the baseline
     * @param top1Changed     of those, rows whose most likely next token after the last one differs
     */
    public record Variant(String spec, boolean batchDependent, long rowErrors, long predicted, double perplexity,
                          double perplexityRatio, long routedPairs, double expertFlopShare, double seconds,
                          double tokensPerSecond, double speedup, long top1Compared, long top1Changed) {
        /**
         * A variant's numbers from its totals, against the baseline {@code base} (null: this is the baseline).
         *
         * @param nll the negated sum of the log-probs of the {@code predicted} tokens, summed exactly and rounded
         *            once ({@link RoutingStudy#exactSum}), so that every order of the rows (one process or many) gives the same
         *            bits
         */
        public static Variant of(RoutingSpec spec, long rowErrors, long predicted, double nll, long routedPairs,
                                 double seconds, long tokens, long top1Compared, long top1Changed, Variant base) {
            double perplexity = predicted > 0 ? Math.exp(nll / predicted) : Double.NaN;
            double tps = seconds > 0 ? tokens / seconds : Double.NaN;
            long basePairs = base == null ? routedPairs : base.routedPairs();
            return new Variant(spec.toString(), spec.dependsOnBatch(), rowErrors, predicted, perplexity,
                    base == null ? 1.0 : perplexity / base.perplexity(), routedPairs,
                    basePairs > 0 ? (double) routedPairs / basePairs : Double.NaN, seconds, tps,
                    base == null ? 1.0 : tps / base.tokensPerSecond(), top1Compared, top1Changed);
        }

        /** top1Changed / top1Compared (NaN where none compared). */
        public double top1ChangedShare() {
            return top1Compared > 0 ? (double) top1Changed / top1Compared : Double.NaN;
        }
    }

    /**
     * What the study found.
     *
     * @param rows          input rows (every variant scores them all)
     * @param tokens        their tokens
     * @param variants      the baseline first
     * @param proposedDrops with --propose-drops: the experts dropped per MoE layer (written as {@link #PROPOSED_DROPS});
     *                      empty otherwise
     * @param notes         what the numbers mean and what they lack
     */
    public record Result(String model, String input, String device, long rows, long tokens, List<Variant> variants,
                         Map<Integer, List<Integer>> proposedDrops, List<String> notes) {
        /** Whether any variant has a row with an error. */
        public boolean rowErrors() {
            return variants.stream().anyMatch(v -> v.rowErrors() > 0);
        }
    }

    private final PrintStream log;

    public RoutingStudy(PrintStream log) {
        this.log = log;
    }

    /**
     * Runs the study; writes nothing (the caller writes the result).
     *
     * @throws IllegalArgumentException  a variant the model cannot take, or an unusable input or option (the message
     *                                   names it)
     * @throws UnsupportedModelException a variant or model the backend cannot run (naming it)
     * @throws IOException               the input cannot be read
     */
    public Result run(RoutingStudyOptions options) throws IOException {
        if (!Files.isRegularFile(options.input())) {
            throw new IllegalArgumentException("--input " + options.input() + " does not exist or is not a file");
        }
        ModelConfig config = ModelConfig.load(options.model());
        ScoreSettings settings = options.settings();
        List<RoutingSpec> variants = new ArrayList<>(options.variants());
        checkProposeDrops(options.proposeDrops(), config);
        List<RoutingSpec> checked = new ArrayList<>(variants);
        if (options.proposeDrops() > 0) {  // the proposal's kind, before its experts are known
            checked.add(proposedSpec(options.out(), Map.of()));
        }
        for (RoutingSpec v : checked) {
            check(() -> settings.with(ScoreSettings.ROUTING, v).checkRouting(config));
        }
        try (Backend backend = settings.openBackend(0)) {
            Engine.requireLoadable(config, options.model(), backend, settings.deviceMemory());
            for (RoutingSpec v : checked) {
                check(() -> Engine.requireRoutable(backend, v, v.routers(config)));
            }
            List<JsonRow> rows = read(options);
            long tokens = rows.stream().mapToLong(r -> r.tokens() == null ? 0 : r.tokens().length).sum();
            log.printf("moescore routing-study: %d rows, %d tokens, %d variants on %s%n", rows.size(), tokens,
                    variants.size() + (options.proposeDrops() > 0 ? 1 : 0), backend.deviceName());
            try (Checkpoint checkpoint = Checkpoint.open(options.model());
                 ModelWeights weights = ModelWeights.load(backend, config, checkpoint, settings.loadOptions())) {
                return study(options, config, backend, weights, variants, rows, tokens);
            }
        }
    }

    private Result study(RoutingStudyOptions options, ModelConfig config, Backend backend, ModelWeights weights,
                         List<RoutingSpec> variants, List<JsonRow> rows, long tokens) {
        ScoreSettings settings = options.settings();
        ScoreOptions scoreOptions = new ScoreOptions(false, 1);  // the most likely next token: top-1 changed
        RowPlan.Limits limits = settings.rowLimits(config.maxPositions());
        Map<Integer, List<Integer>> drops = Map.of();
        List<RoutingSpec> specs = new ArrayList<>();
        List<LocalScorer.Rows> scorers = new ArrayList<>();
        List<Run> runs = new ArrayList<>();
        int count = variants.size() + (options.proposeDrops() > 0 ? 1 : 0);
        // the first round: each variant's scores and expert load (and its first time), the proposed drops after the
        // baseline; one untimed pass of the baseline first, so its time holds no warm-up the others lack
        for (int i = 0; i < variants.size() || (i == variants.size() && !drops.isEmpty()); i++) {
            RoutingSpec spec = i < variants.size() ? variants.get(i) : proposedSpec(options.out(), drops);
            log.printf("moescore routing-study: [%d/%d] %s ...%n", i + 1, count, spec);
            // sharing the weights: the engines are never closed, the weights close once, after the last
            Engine engine = new Engine(config, backend, weights, spec);
            LocalScorer.Rows scorer = new LocalScorer.Rows(engine, scoreOptions, limits, settings.batchTokens(),
                    settings.longRows());
            if (i == 0) {
                scoreAll(scorer, rows, settings.batchTokens(), new ExpertLoad(config.numLayers(), config.numExperts()));
            }
            Run run = score(scorer, rows, settings.batchTokens(), config);
            if (i == 0 && options.proposeDrops() > 0) {
                drops = leastLoaded(run.load, config, options.proposeDrops());
            }
            specs.add(spec);
            scorers.add(scorer);
            runs.add(run);
            Variant v = measure(spec, run, runs.get(0), tokens, null);
            log.printf("moescore routing-study: [%d/%d] %s: perplexity %.4f (x%.4f), expert FLOPs x%.3f, top-1 "
                    + "changed in %d of %d rows%n", i + 1, count, spec, v.perplexity(), v.perplexityRatio(),
                    v.expertFlopShare(), v.top1Changed(), v.top1Compared());
        }
        // the other rounds time every variant again, in turn, so that warm-up and load drift fall on all alike
        double[][] seconds = new double[specs.size()][options.repeats()];
        for (int i = 0; i < specs.size(); i++) {
            seconds[i][0] = runs.get(i).seconds;
        }
        for (int round = 1; round < options.repeats(); round++) {
            log.printf("moescore routing-study: timing round %d of %d%n", round + 1, options.repeats());
            for (int i = 0; i < specs.size(); i++) {
                seconds[i][round] = score(scorers.get(i), rows, settings.batchTokens(), config).seconds;
            }
        }
        List<Variant> results = new ArrayList<>();
        for (int i = 0; i < specs.size(); i++) {
            Arrays.sort(seconds[i]);
            Run run = runs.get(i);
            results.add(measure(specs.get(i), new Run(run.scores, run.load, seconds[i][options.repeats() / 2]),
                    runs.get(0), tokens, results.isEmpty() ? null : results.get(0)));
        }
        Run baseline = runs.get(0);
        List<String> notes = new ArrayList<>();
        notes.add(FLOPS_NOTE);
        if (baseline.pairs() == 0) {
            notes.add("expert FLOP share not available: the backend reported no expert load for the baseline");
        }
        notes.add("tokens/s: wall time of each variant's scoring on " + backend.deviceName() + ", the median of "
                + options.repeats() + " run(s), the variants timed in turn each round (one untimed pass of the "
                + "baseline before the first); speed-up: relative to the baseline");
        if (results.stream().anyMatch(Variant::batchDependent)) {
            notes.add(BATCH_DEPENDENT_NOTE);
        }
        return new Result(options.model().toString(), options.input().toString(), backend.deviceName(), rows.size(),
                tokens, List.copyOf(results), drops, List.copyOf(notes));
    }

    /** The rows of the input, read and tokenized once. */
    private static List<JsonRow> read(RoutingStudyOptions options) throws IOException {
        List<JsonRow> rows = new ArrayList<>();
        try (JsonRows in = JsonRows.open(options.input(), options.model())) {
            for (JsonRow row = in.next(); row != null; row = in.next()) {
                rows.add(row);
            }
        }
        if (rows.isEmpty()) {
            throw new IllegalArgumentException("--input " + options.input() + " holds no rows");
        }
        return rows;
    }

    /** One variant's scoring: each row's score, the expert load, the wall time. */
    private record Run(RowScore[] scores, ExpertLoad load, double seconds) {
        long pairs() {
            long sum = 0;
            for (int l = 0; l < load.numLayers(); l++) {
                for (long c : load.layer(l)) {
                    sum += c;
                }
            }
            return sum;
        }
    }

    private static Run score(LocalScorer.Rows scorer, List<JsonRow> rows, int batchTokens, ModelConfig config) {
        ExpertLoad load = new ExpertLoad(config.numLayers(), config.numExperts());
        long start = System.nanoTime();
        RowScore[] scores = scoreAll(scorer, rows, batchTokens, load);
        return new Run(scores, load, (System.nanoTime() - start) / 1e9);
    }

    /** Scores the rows in score-local's windows ({@link BatchPlanner#windowFull}), so batches are the same. */
    private static RowScore[] scoreAll(LocalScorer.Rows scorer, List<JsonRow> rows, int batchTokens,
                                       ExpertLoad load) {
        RowScore[] scores = new RowScore[rows.size()];
        int from = 0;
        long pending = 0;
        for (int i = 0; i < rows.size(); i++) {
            pending += rows.get(i).tokens() == null ? 0 : rows.get(i).tokens().length;
            if (BatchPlanner.windowFull(pending, batchTokens) || i == rows.size() - 1) {
                RowScore[] window = scorer.score(rows.subList(from, i + 1), load);
                for (int j = 0; j < window.length; j++) {
                    scores[from + j] = window[j] != null ? window[j]
                            : RowScore.failed(0, rows.get(from + j).error());
                }
                from = i + 1;
                pending = 0;
            }
        }
        return scores;
    }

    /** {@code sum + value}, exactly (a double converts to a BigDecimal exactly): the same total in any order. */
    public static BigDecimal exactSum(BigDecimal sum, double value) {
        return sum.add(new BigDecimal(value));
    }

    private static Variant measure(RoutingSpec spec, Run run, Run baseline, long tokens, Variant base) {
        long errors = 0;
        long predicted = 0;
        BigDecimal logProbs = BigDecimal.ZERO;
        long compared = 0;
        long changed = 0;
        for (int r = 0; r < run.scores.length; r++) {
            RowScore s = run.scores[r];
            if (!s.ok()) {
                errors++;
                continue;
            }
            predicted += Math.max(0, s.score().numTokens() - 1);
            logProbs = exactSum(logProbs, s.score().sumLogProb());
            RowScore b = baseline.scores[r];
            int[] top = s.score().topTokens();
            int[] baseTop = b.ok() ? b.score().topTokens() : null;
            if (top != null && top.length > 0 && baseTop != null && baseTop.length > 0) {
                compared++;
                changed += top[0] != baseTop[0] ? 1 : 0;
            }
        }
        return Variant.of(spec, errors, predicted, -logProbs.doubleValue(), run.pairs(), run.seconds, tokens,
                compared, changed, base);
    }

    private static void checkProposeDrops(int n, ModelConfig config) {
        if (n > config.numExperts() - config.topK()) {
            throw new IllegalArgumentException(RoutingStudyOptions.PROPOSE_DROPS.flag() + " " + n + " would leave "
                    + (config.numExperts() - n) + " of the model's " + config.numExperts() + " experts per layer, "
                    + "fewer than the " + config.topK() + " each token needs: give at most "
                    + (config.numExperts() - config.topK()));
        }
    }

    /**
     * The {@code n} least-loaded experts of each MoE layer (fewest tokens routed; ties to the higher index, so a
     * model's earlier experts stay), each layer's list ascending.
     */
    static Map<Integer, List<Integer>> leastLoaded(ExpertLoad load, ModelConfig config, int n) {
        Map<Integer, List<Integer>> drops = new TreeMap<>();
        for (int l = 0; l < config.numLayers(); l++) {
            if (!config.moeLayers()[l]) {
                continue;
            }
            long[] counts = load.layer(l);
            drops.put(l, IntStream.range(0, counts.length).boxed()
                    .sorted(Comparator.<Integer>comparingLong(e -> counts[e]).thenComparing(e -> -e))
                    .limit(n).sorted().toList());
        }
        return drops;
    }

    /** The drop-experts variant of the proposed drops, named by the file it is written to. */
    private static RoutingSpec proposedSpec(Path out, Map<Integer, List<Integer>> drops) {
        return new RoutingSpec(RoutingSpec.Kind.DROP_EXPERTS, null, 0, 0, 0, out.resolve(PROPOSED_DROPS).toString(),
                drops);
    }

    /** Runs a check of a variant, naming --variants in its refusal. */
    public static void check(Runnable check) {
        try {
            check.run();
        } catch (UnsupportedModelException e) {
            throw new UnsupportedModelException("--variants: " + e.getMessage());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--variants: " + e.getMessage(), e);
        }
    }
}
