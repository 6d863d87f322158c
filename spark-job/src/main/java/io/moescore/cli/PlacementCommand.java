package io.moescore.cli;

import io.moescore.placement.LoadBounds;
import io.moescore.placement.LoadSeries;
import io.moescore.placement.Placement;
import io.moescore.placement.PlacementAlgorithm;
import io.moescore.placement.PlacementLimits;
import io.moescore.placement.PlacementPlan;
import io.moescore.placement.RoutingTrace;
import io.moescore.spark.trace.TraceInputs;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code moescore placement}: a placement plan (JSON) of every MoE layer's experts on devices from a routing trace's
 * expert loads, and per layer the busiest device's predicted load against the lower bound and round-robin.
 */
@Command(name = "placement", mixinStandardHelpOptions = true,
        description = "Plans which devices hold each expert of each MoE layer from the expert loads of a routing "
                + "trace, writes the plan as JSON and prints each layer's predicted max/mean device load, the lower "
                + "bound and round-robin's.")
final class PlacementCommand implements Callable<Integer> {
    /** Search nodes per layer for the exact bound (a few milliseconds; else the closed-form bound is printed). */
    static final long BOUND_BUDGET = 1_000_000;

    @Option(names = "--trace", required = true, split = ",", paramLabel = "PATH", description = "routing traces: a "
            + "scoring job's --routing-trace folder or its files, SmartMoE's table_iter{I}_rank{R}.log files or "
            + "folders of them, or their .csv(.gz) form (comma-separated or repeated: one trace)")
    List<Path> traces;

    @Option(names = "--devices", required = true, paramLabel = "N", description = "devices to place experts on")
    int devices;

    @Option(names = "--slots", defaultValue = "0", paramLabel = "S", description = "experts of a layer each device "
            + "holds (0: the fewest that hold every expert and replica; default: ${DEFAULT-VALUE})")
    int slots;

    @Option(names = "--replicas", defaultValue = "0", paramLabel = "R", description = "extra copies of hot experts "
            + "per layer (eplb; default: ${DEFAULT-VALUE})")
    int replicas;

    @Option(names = "--algorithm", defaultValue = "greedy", paramLabel = "NAME", description = "greedy (SmartMoE: "
            + "heaviest expert first to the least loaded device), eplb (replicas of hot experts, then packing) or "
            + "round-robin (default: ${DEFAULT-VALUE})")
    String algorithm;

    @Option(names = "--window", defaultValue = "0", paramLabel = "STEPS", description = "plan from the last STEPS "
            + "steps (batches; SmartMoE: iterations) of the trace (0: all of it; default: ${DEFAULT-VALUE})")
    int window;

    @Option(names = "--out", required = true, paramLabel = "PLAN.json", description = "where to write the plan")
    Path out;

    @Override
    public Integer call() {
        PlacementAlgorithm chosen;
        try {
            chosen = PlacementAlgorithm.named(algorithm);
            positive("--devices", devices, 1);
            positive("--slots", slots, 0);
            positive("--replicas", replicas, 0);
            positive("--window", window, 0);
        } catch (IllegalArgumentException e) {
            return bad(e.getMessage().startsWith("--") ? e.getMessage() : "--algorithm " + e.getMessage());
        }
        RoutingTrace trace;
        PlacementLimits limits;
        try {
            trace = TraceInputs.read(traces);
        } catch (IllegalArgumentException e) {
            return bad("--trace: " + e.getMessage());
        }
        try {
            limits = PlacementLimits.of(devices, slots, replicas, trace.numExperts());
        } catch (IllegalArgumentException e) {
            return bad("--devices " + devices + ", --slots " + slots + ", --replicas " + replicas + ": "
                    + e.getMessage());
        }
        if (replicas > 0 && chosen != PlacementAlgorithm.EPLB) {
            System.err.println("moescore placement: note: --algorithm " + chosen.userName() + " places no replicas "
                    + "(--replicas is eplb's)");
        }
        List<PlacementPlan.Layer> layers = new ArrayList<>();
        System.out.printf(Locale.ROOT, "%s: %d experts per layer on %d devices x %d slots, %d replicas, %s%n",
                trace.source(), trace.numExperts(), devices, limits.slots(), limits.replicas(), chosen.userName());
        System.out.println("layer\tsteps\tmax/mean\tlower bound\tround-robin");
        for (LoadSeries s : trace.series()) {
            int from = window == 0 ? 0 : Math.max(0, s.numSteps() - window);
            double[] loads = s.window(from, s.numSteps());
            double mean = Arrays.stream(loads).sum() / devices;
            Placement p = chosen.place(loads, limits, null);
            LoadBounds.Bound bound = LoadBounds.best(loads, chosen == PlacementAlgorithm.EPLB ? limits
                    : new PlacementLimits(devices, limits.slots(), 0), BOUND_BUDGET);
            double predicted = p.maxLoad(loads, devices) / mean;
            double roundRobin = PlacementAlgorithm.ROUND_ROBIN.place(loads, limits, null).maxLoad(loads, devices)
                    / mean;
            layers.add(new PlacementPlan.Layer(s.layer(), p, predicted, bound.value() / mean));
            System.out.printf(Locale.ROOT, "%d\t%d\t%.3f\t%.3f%s\t%.3f%n", s.layer(), s.numSteps() - from, predicted,
                    bound.value() / mean, bound.exact() ? " (exact)" : "", roundRobin);
        }
        try {
            new PlacementPlan(limits, chosen.userName(), layers).write(out);
        } catch (IOException e) {
            System.err.println("moescore placement: cannot write --out " + out + ": " + e);
            return 1;
        }
        System.err.println("moescore placement: wrote " + out);
        return 0;
    }

    private static void positive(String option, int value, int min) {
        if (value < min) {
            throw new IllegalArgumentException(option + " must be at least " + min + ", got " + value);
        }
    }

    private static int bad(String message) {
        System.err.println("moescore placement: " + message);
        return 2;
    }
}
