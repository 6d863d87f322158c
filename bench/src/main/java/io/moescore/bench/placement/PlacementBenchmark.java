package io.moescore.bench.placement;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moescore.placement.DynamicPlanner;
import io.moescore.placement.LoadBounds;
import io.moescore.placement.LoadSeries;
import io.moescore.placement.PlacementAlgorithm;
import io.moescore.placement.PlacementLimits;
import io.moescore.placement.RoutingTrace;
import io.moescore.spark.trace.TraceInputs;
import java.io.File;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * Placement algorithms on recorded routing traces, judged on held-out data: for every layer and every window of
 * {@code window} steps, each algorithm plans from the window and is measured on the {@code horizon} steps that follow
 * (their summed loads), as max/mean device load, against the lower bound of those held-out loads (exact by branch
 * and bound where it finishes in {@code budget} nodes) and against round-robin. The greedy is also planned on the
 * held-out loads themselves ("in-sample": the algorithm's own gap, without the forecast's). Then the dynamic
 * planner (re-plan every {@code every} steps from the last {@code window}) against the static plan, per move cost.
 *
 *   java ... io.moescore.bench.placement.PlacementBenchmark TRACE[,TRACE...] OUT.json [devices=4,8,16]
 *       [window=4] [horizon=1] [every=1] [move-costs=0,0.25,1] [budget=200000] [skip=0]
 * TRACE: anything {@code moescore placement --trace} reads (SmartMoE .log files or folders, their CSV form, our
 * trace folders). EPLB gets one spare slot per device and as many replicas ({@code replicas = devices}). Move
 * costs are in units of the mean device's tokens of one step (1: a move costs as much as a step's mean device work).
 * {@code skip=N} leaves the trace's first N steps out (early training, before the routing settles).
 */
public final class PlacementBenchmark {
    private static final double TARGET = 1.05;

    private PlacementBenchmark() {
    }

    public static void main(String[] args) throws Exception {
        List<Path> traces = Arrays.stream(args[0].split(",")).map(Path::of).toList();
        File out = new File(args[1]);
        int[] devicesList = {4, 8, 16};
        int window = 4;
        int horizon = 1;
        int every = 1;
        double[] moveCosts = {0, 0.25, 1};
        long budget = 200_000;
        int skip = 0;
        for (int i = 2; i < args.length; i++) {
            String[] kv = args[i].split("=", 2);
            switch (kv[0]) {
                case "devices" -> devicesList = Arrays.stream(kv[1].split(",")).mapToInt(Integer::parseInt).toArray();
                case "window" -> window = Integer.parseInt(kv[1]);
                case "horizon" -> horizon = Integer.parseInt(kv[1]);
                case "every" -> every = Integer.parseInt(kv[1]);
                case "move-costs" -> moveCosts = Arrays.stream(kv[1].split(",")).mapToDouble(Double::parseDouble)
                        .toArray();
                case "budget" -> budget = Long.parseLong(kv[1]);
                case "skip" -> skip = Integer.parseInt(kv[1]);
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        long start = System.nanoTime();
        RoutingTrace trace = TraceInputs.read(traces);
        int from = skip;
        List<LoadSeries> layers = trace.series().stream().map(s -> new LoadSeries(s.layer(),
                Arrays.copyOfRange(s.steps(), from, s.numSteps()), Arrays.copyOfRange(s.counts(), from, s.numSteps())))
                .toList();
        ObjectMapper json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        ObjectNode root = json.createObjectNode();
        root.put("trace", trace.source());
        root.put("experts", trace.numExperts());
        root.put("layers", layers.size());
        root.put("skipped_steps", skip);
        root.put("first_step", layers.get(0).steps()[0]);
        root.put("steps", layers.get(0).numSteps());
        root.put("window", window);
        root.put("horizon", horizon);
        root.put("every", every);
        root.put("bound_budget_nodes", budget);
        root.put("target", "greedy max/mean within 5% of the lower bound's on >= 95% of layer-windows (held-out)");
        ArrayNode results = root.putArray("results");
        for (int devices : devicesList) {
            ObjectNode r = results.addObject();
            heldOut(r, layers, trace.numExperts(), devices, window, horizon, budget);
            dynamic(r.putArray("dynamic"), layers, trace.numExperts(), devices, window, every, moveCosts);
        }
        root.put("seconds", (System.nanoTime() - start) / 1e9);
        json.writeValue(out, root);
        System.err.println("wrote " + out);
    }

    /** Per device count: each algorithm on every layer-window's held-out loads. */
    private static void heldOut(ObjectNode r, List<LoadSeries> layers, int experts, int devices, int window,
                                int horizon, long budget) {
        PlacementLimits swap = PlacementLimits.of(devices, 0, 0, experts);
        PlacementLimits spare = PlacementLimits.of(devices, swap.slots() + 1, devices, experts);
        r.put("devices", devices);
        r.put("slots", swap.slots());
        r.put("eplb_slots", spare.slots());
        r.put("eplb_replicas", spare.replicas());
        List<double[]> rows = new ArrayList<>();  // lb, lbExact, greedy, greedyIn, eplb, lbSpare, rr (all /mean)
        for (LoadSeries s : layers) {
            for (int from = 0; from + window + horizon <= s.numSteps(); from += horizon) {
                double[] plan = s.window(from, from + window);
                double[] held = s.window(from + window, from + window + horizon);
                double mean = Arrays.stream(held).sum() / devices;
                LoadBounds.Bound lb = LoadBounds.best(held, swap, budget);
                rows.add(new double[] {lb.value() / mean, lb.exact() ? 1 : 0,
                    PlacementAlgorithm.GREEDY.place(plan, swap, null).maxLoad(held, devices) / mean,
                    PlacementAlgorithm.GREEDY.place(held, swap, null).maxLoad(held, devices) / mean,
                    PlacementAlgorithm.EPLB.place(plan, spare, null).maxLoad(held, devices) / mean,
                    LoadBounds.bound(held, spare) / mean,
                    PlacementAlgorithm.ROUND_ROBIN.place(plan, swap, null).maxLoad(held, devices) / mean});
            }
        }
        r.put("layer_windows", rows.size());
        r.put("lower_bound_exact_fraction", mean(rows, 1));
        r.put("lower_bound_max_over_mean", mean(rows, 0));
        algorithm(r.putObject("greedy"), rows, 2, 0);
        algorithm(r.putObject("greedy_in_sample"), rows, 3, 0);
        algorithm(r.putObject("eplb"), rows, 4, 5);
        r.put("eplb_lower_bound_max_over_mean", mean(rows, 5));
        algorithm(r.putObject("round_robin"), rows, 6, 0);
        System.err.printf(Locale.ROOT, "%2d devices, %d layer-windows: lower bound %.3f (exact %.0f%%), greedy %.3f "
                + "(within 5%%: %.1f%%; in-sample %.1f%%), eplb %.3f (its bound %.3f), round-robin %.3f%n", devices,
                rows.size(), mean(rows, 0), 100 * mean(rows, 1), mean(rows, 2), 100 * within(rows, 2, 0),
                100 * within(rows, 3, 0), mean(rows, 4), mean(rows, 5), mean(rows, 6));
    }

    private static void algorithm(ObjectNode a, List<double[]> rows, int column, int bound) {
        a.put("max_over_mean", mean(rows, column));
        double[] ratio = rows.stream().mapToDouble(r -> r[column] / r[bound]).sorted().toArray();
        a.put("over_lower_bound_median", ratio[ratio.length / 2]);
        a.put("over_lower_bound_p95", ratio[(int) Math.min(ratio.length - 1, Math.ceil(0.95 * ratio.length) - 1)]);
        a.put("over_lower_bound_max", ratio[ratio.length - 1]);
        a.put("within_5pct_fraction", within(rows, column, bound));
        a.put("over_round_robin_mean", rows.stream().mapToDouble(r -> r[column] / r[6]).average().orElse(Double.NaN));
    }

    private static double mean(List<double[]> rows, int column) {
        return rows.stream().mapToDouble(r -> r[column]).average().orElse(Double.NaN);
    }

    private static double within(List<double[]> rows, int column, int bound) {
        return rows.stream().filter(r -> r[column] <= TARGET * r[bound] + 1e-12).count() / (double) rows.size();
    }

    /** The dynamic planner against the static plan on every layer, per move cost (greedy and EPLB). */
    private static void dynamic(ArrayNode out, List<LoadSeries> layers, int experts, int devices, int window,
                                int every, double[] moveCosts) {
        PlacementLimits swap = PlacementLimits.of(devices, 0, 0, experts);
        PlacementLimits spare = PlacementLimits.of(devices, swap.slots() + 1, devices, experts);
        for (PlacementAlgorithm algorithm : List.of(PlacementAlgorithm.GREEDY, PlacementAlgorithm.EPLB)) {
            for (double cost : moveCosts) {
                double dynamicCost = 0;
                double staticCost = 0;
                long moves = 0;
                int adopted = 0;
                int replans = 0;
                double worstLayer = Double.POSITIVE_INFINITY;
                double bestLayer = 0;
                for (LoadSeries s : layers) {
                    double stepMean = Arrays.stream(s.total()).sum() / s.numSteps() / devices;
                    DynamicPlanner.Result r = new DynamicPlanner(algorithm,
                            algorithm == PlacementAlgorithm.EPLB ? spare : swap, window, every, cost * stepMean).run(s);
                    dynamicCost += r.dynamicCost();
                    staticCost += r.staticCost();
                    moves += r.moves();
                    adopted += r.adopted();
                    replans += r.replans();
                    worstLayer = Math.min(worstLayer, r.gain());
                    bestLayer = Math.max(bestLayer, r.gain());
                }
                ObjectNode d = out.addObject();
                d.put("algorithm", algorithm.userName());
                d.put("move_cost_step_means", cost);
                d.put("gain_over_static", staticCost / dynamicCost);
                d.put("gain_worst_layer", worstLayer);
                d.put("gain_best_layer", bestLayer);
                d.put("replans", replans);
                d.put("adopted", adopted);
                d.put("expert_moves", moves);
                System.err.printf(Locale.ROOT, "%2d devices, dynamic %s, move cost %.2f step means: gain %.3fx over "
                        + "static (layers %.3f-%.3f), %d of %d re-plans adopted, %d moves%n", devices,
                        algorithm.userName(), cost, staticCost / dynamicCost, worstLayer, bestLayer, adopted, replans,
                        moves);
            }
        }
    }
}
