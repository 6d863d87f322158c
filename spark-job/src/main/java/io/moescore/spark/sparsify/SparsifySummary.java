package io.moescore.spark.sparsify;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moescore.sparsify.ExpertReconstruction;
import io.moescore.sparsify.Sparsifier;
import io.moescore.spark.JsonFiles;
import java.io.IOException;
import java.io.PrintStream;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.Function;
import java.util.stream.Collectors;
import org.apache.hadoop.conf.Configuration;

/**
 * Totals of a sparsify job: the calibration data, per pass its calibration tokens/s (tokens over the span from the
 * first calibration task's start to the last one's end), its solve seconds per expert (gate, up and down
 * together, as the tasks measured them) and, reconstructing, each expert's reconstruction error before and after
 * and seconds; the executors that did the work, and which experts fell back to magnitude. Retried task attempts
 * count once.
 */
public record SparsifySummary(Pruning pruning, boolean sequential, String output, long rows, long skippedRows,
                              long tokens, List<Pass> passes, Sparsifier.Result result, double seconds) {

    /** One calibration pass, the solves of its layers and their experts' reconstructions. */
    public record Pass(int[] layers, List<CalibrationStats> calibration, List<SolveStats> solves,
                       List<ReconstructionStats> reconstructions) {
        static Pass of(int[] layers, Collection<CalibrationStats> calibration, Collection<SolveStats> solves,
                       Collection<ReconstructionStats> reconstructions) {
            return new Pass(layers.clone(), lastAttempts(calibration, s -> s.stageId() + "/" + s.partitionId(),
                    CalibrationStats::attempt), lastAttempts(solves, s -> s.stageId() + "/" + s.partitionId() + "/"
                    + s.input(), SolveStats::attempt), lastAttempts(reconstructions, s -> Sparsifier.expertKey(
                    s.layer(), s.expert()), ReconstructionStats::attempt));
        }

        public long tokens() {
            return calibration.stream().mapToLong(CalibrationStats::tokens).sum();
        }

        public long skippedSequences() {
            return calibration.stream().mapToLong(CalibrationStats::skipped).sum();
        }

        public double calibrationSeconds() {
            return span(calibration.stream().mapToLong(CalibrationStats::startMillis).min().orElse(0),
                    calibration.stream().mapToLong(CalibrationStats::endMillis).max().orElse(0));
        }

        public double tokensPerSecond() {
            return calibrationSeconds() > 0 ? tokens() / calibrationSeconds() : 0;
        }

        public double solveSeconds() {
            return span(solves.stream().mapToLong(SolveStats::startMillis).min().orElse(0),
                    solves.stream().mapToLong(SolveStats::endMillis).max().orElse(0));
        }

        /** Per "layer/expert", the seconds its solves took (gate and up share one task, down has its own). */
        public SortedMap<String, Double> solveSecondsPerExpert() {
            SortedMap<String, Double> out = new TreeMap<>();
            solves.forEach(s -> out.merge(s.layer() + "/" + s.expert(), s.seconds(), Double::sum));
            return out;
        }

        public int weightsPruned() {
            return solves.stream().mapToInt(SolveStats::weights).sum();
        }

        /** From the first reconstruction task's start to the last one's end. */
        public double reconstructionSeconds() {
            return span(reconstructions.stream().mapToLong(ReconstructionStats::startMillis).min().orElse(0),
                    reconstructions.stream().mapToLong(ReconstructionStats::endMillis).max().orElse(0));
        }
    }

    private static <T> List<T> lastAttempts(Collection<T> stats, Function<T, String> task,
                                            java.util.function.ToIntFunction<T> attempt) {
        Map<String, T> last = new TreeMap<>();
        stats.forEach(s -> last.merge(task.apply(s), s,
                (a, b) -> attempt.applyAsInt(a) >= attempt.applyAsInt(b) ? a : b));
        return List.copyOf(last.values());
    }

    private static double span(long fromMillis, long toMillis) {
        return Math.max(0, toMillis - fromMillis) / 1000.0;
    }

    public double calibrationSeconds() {
        return passes.stream().mapToDouble(Pass::calibrationSeconds).sum();
    }

    public double calibrationTokensPerSecond() {
        long passTokens = passes.stream().mapToLong(Pass::tokens).sum();
        return calibrationSeconds() > 0 ? passTokens / calibrationSeconds() : 0;
    }

    public double solveSeconds() {
        return passes.stream().mapToDouble(Pass::solveSeconds).sum();
    }

    public double reconstructionSeconds() {
        return passes.stream().mapToDouble(Pass::reconstructionSeconds).sum();
    }

    /** This summary with the written checkpoint's result. */
    SparsifySummary withResult(Sparsifier.Result written) {
        return new SparsifySummary(pruning, sequential, output, rows, skippedRows, tokens, passes, written, seconds);
    }

    /** Every expert's reconstruction error before and after, by "layer/expert" (as {@link Sparsifier.Result} has it). */
    public SortedMap<String, ExpertReconstruction.Result> reconstructionErrors() {
        SortedMap<String, ExpertReconstruction.Result> out = new TreeMap<>();
        reconstructions().forEach((k, r) -> out.put(k, new ExpertReconstruction.Result(r.initialError(),
                r.finalError())));
        return out;
    }

    /** Every expert's reconstruction, over all passes, by "layer/expert". */
    public SortedMap<String, ReconstructionStats> reconstructions() {
        SortedMap<String, ReconstructionStats> out = new TreeMap<>();
        passes.forEach(p -> p.reconstructions().forEach(r -> out.put(Sparsifier.expertKey(r.layer(), r.expert()), r)));
        return out;
    }

    /** Every expert's solve seconds, over all passes. */
    public double[] solveSecondsPerExpert() {
        return passes.stream().flatMap(p -> p.solveSecondsPerExpert().values().stream()).mapToDouble(d -> d).toArray();
    }

    public List<String> executors() {
        TreeSet<String> ids = new TreeSet<>();
        passes.forEach(p -> {
            p.calibration().forEach(s -> ids.add(s.executorId()));
            p.solves().forEach(s -> ids.add(s.executorId()));
            p.reconstructions().forEach(s -> ids.add(s.executorId()));
        });
        return List.copyOf(ids);
    }

    public List<String> devices() {
        return passes.stream().flatMap(p -> p.calibration().stream()).map(CalibrationStats::device).distinct().sorted()
                .toList();
    }

    public void print(PrintStream out) {
        out.printf("moescore sparsify: %d calibration rows (%d skipped), %,d tokens, %d pass(es)%s, executors %s "
                + "on %s%n", rows, skippedRows, tokens, passes.size(), sequential ? " (sequential)" : "", executors(),
                devices());
        for (int i = 0; i < passes.size(); i++) {
            Pass p = passes.get(i);
            double[] perExpert = p.solveSecondsPerExpert().values().stream().mapToDouble(d -> d).toArray();
            out.printf("  pass %d, layers %s: calibration %,d tokens in %.1f s (%,.0f tokens/s); %d Hessians solved in "
                            + "%.1f s (%.3f s per expert on average, at most %.3f)%s%n", i + 1,
                    Arrays.toString(p.layers()),
                    p.tokens(), p.calibrationSeconds(), p.tokensPerSecond(), p.solves().size(), p.solveSeconds(),
                    Arrays.stream(perExpert).average().orElse(0), Arrays.stream(perExpert).max().orElse(0),
                    p.reconstructions().isEmpty() ? "" : String.format(Locale.ROOT, "; %d experts reconstructed in "
                            + "%.1f s, error %s", p.reconstructions().size(), p.reconstructionSeconds(),
                            errors(p.reconstructions())));
        }
        out.printf("moescore sparsify: %d expert weights pruned %s by %s%s into %s in %.1f s%n",
                result.tensorsPruned(), pruning.pattern().userName(), pruning.method(), pruning.reconstructs()
                        ? " + " + pruning.reconstruction().steps() + " reconstruction steps" : "", output, seconds);
        result.expertsFellBack().forEach((layer, experts) -> out.printf("moescore sparsify: layer %d: experts %s "
                + "(%d weights) fell back to magnitude: no calibration token reached them%n", layer, experts,
                result.fallbacksPerLayer().get(layer)));
    }

    /** "mean before -> mean after (worst after)" of the experts' mean squared errors. */
    static String errors(Collection<ReconstructionStats> r) {
        return String.format(Locale.ROOT, "%.3e -> %.3e on average (worst after %.3e)",
                r.stream().mapToDouble(ReconstructionStats::initialError).average().orElse(0),
                r.stream().mapToDouble(ReconstructionStats::finalError).average().orElse(0),
                r.stream().mapToDouble(ReconstructionStats::finalError).max().orElse(0));
    }

    public ObjectNode toJson() {
        ObjectMapper mapper = new ObjectMapper();
        ObjectNode root = mapper.createObjectNode();
        root.put("pattern", pruning.pattern().userName());
        root.put("method", pruning.method());
        root.put("sequential", sequential);
        root.put("reconstruct_steps", pruning.reconstruction().steps());
        root.put("output", output);
        root.put("calibration_rows", rows);
        root.put("calibration_rows_skipped", skippedRows);
        root.put("calibration_tokens", tokens);
        executors().forEach(root.putArray("executors")::add);
        devices().forEach(root.putArray("devices")::add);
        root.put("calibration_seconds", calibrationSeconds());
        root.put("calibration_tokens_per_second", calibrationTokensPerSecond());
        root.put("solve_seconds", solveSeconds());
        double[] perExpert = solveSecondsPerExpert();
        root.put("experts_solved", perExpert.length);
        root.put("solve_seconds_per_expert_mean", Arrays.stream(perExpert).average().orElse(0));
        root.put("solve_seconds_per_expert_max", Arrays.stream(perExpert).max().orElse(0));
        ArrayNode passNodes = root.putArray("passes");
        for (Pass p : passes) {
            ObjectNode n = passNodes.addObject();
            Arrays.stream(p.layers()).forEach(n.putArray("layers")::add);
            n.put("calibration_tokens", p.tokens());
            n.put("calibration_sequences_skipped", p.skippedSequences());
            n.put("calibration_seconds", p.calibrationSeconds());
            n.put("calibration_tokens_per_second", p.tokensPerSecond());
            n.put("hessians_solved", p.solves().size());
            n.put("weights_pruned", p.weightsPruned());
            n.put("solve_seconds", p.solveSeconds());
            ObjectNode experts = n.putObject("solve_seconds_per_expert");
            p.solveSecondsPerExpert().forEach(experts::put);
            if (!p.reconstructions().isEmpty()) {
                n.put("experts_reconstructed", p.reconstructions().size());
                n.put("reconstruction_seconds", p.reconstructionSeconds());
            }
        }
        if (pruning.reconstructs()) {
            root.put("reconstruction_seconds", reconstructionSeconds());
            ObjectNode losses = root.putObject("reconstruction_per_expert");
            reconstructions().forEach((expert, r) -> {
                ObjectNode e = losses.putObject(expert);
                e.put("tokens", r.tokens());
                e.put("error_before", r.initialError());
                e.put("error_after", r.finalError());
                e.put("seconds", r.seconds());
                e.put("executor", r.executorId());
            });
        }
        root.put("tensors_pruned", result.tensorsPruned());
        ObjectNode perLayer = root.putObject("fell_back_to_magnitude_per_layer");
        result.fallbacksPerLayer().forEach((layer, n) -> perLayer.put(Integer.toString(layer), n));
        ObjectNode experts = root.putObject("experts_fell_back_to_magnitude");
        result.expertsFellBack().forEach((layer, ids) -> ids.forEach(experts.withArray(Integer.toString(layer))::add));
        root.put("seconds", seconds);
        return root;
    }

    /** Writes the summary as JSON to any Hadoop file system path. */
    public void write(String path, Configuration conf) throws IOException {
        JsonFiles.write(path, conf, toJson());
    }

    static String layersOf(List<int[]> passes) {
        return passes.stream().map(Arrays::toString).collect(Collectors.joining(", "));
    }
}
