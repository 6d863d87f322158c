package io.moescore.sparsify;

import io.moescore.sparse.SparsityPattern;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moescore.engine.RoutedInputs;
import io.moescore.model.Checkpoint;
import io.moescore.model.DType;
import io.moescore.model.ModelConfig;
import io.moescore.model.ModelFormatException;
import io.moescore.model.SafeTensorsWriter;
import io.moescore.model.TensorRef;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import java.util.SortedSet;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Stream;

/**
 * Writes a compressed copy of a model: every routed expert's gate, up and down weight pruned along its input
 * dimension to a {@link SparsityPattern} (2:4 or 128:2:8) and packed as that pattern names its tensors; all other
 * tensors unchanged; {@code sparsity.json} records pattern, method and calibration. Methods: magnitude; wanda (|w|
 * times the norm of its input feature over the calibration tokens routed to that expert); sparsegpt
 * ({@link SparseGpt} on the expert's Hessian X^T X, one layer at a time; sequential: layer l calibrated through the
 * already pruned layers before it). Calibration runs on our CPU engine. Experts no calibration token reached fall
 * back to magnitude.
 */
public final class Sparsifier {
    public static final List<String> METHODS = List.of("magnitude", "wanda", "sparsegpt");

    private Sparsifier() {
    }

    /**
     * Summary of a run. fallbacksPerLayer: per layer index, the expert weights that fell back to magnitude
     * because no calibration token reached their expert (empty for magnitude); expertsFellBack: those experts;
     * reconstructed: per expert ("layer/expert") its reconstruction's error before and after (empty without).
     */
    public record Result(int tensorsPruned, SortedMap<Integer, Integer> fallbacksPerLayer,
                         SortedMap<Integer, SortedSet<Integer>> expertsFellBack, long calibrationTokens,
                         SortedMap<String, ExpertReconstruction.Result> reconstructed) {
        public Result(int tensorsPruned, SortedMap<Integer, Integer> fallbacksPerLayer,
                      SortedMap<Integer, SortedSet<Integer>> expertsFellBack, long calibrationTokens) {
            this(tensorsPruned, fallbacksPerLayer, expertsFellBack, calibrationTokens, new TreeMap<>());
        }

        public int expertsWithoutCalibration() {
            return fallbacksPerLayer.values().stream().mapToInt(Integer::intValue).sum();
        }

        public Result withReconstructed(SortedMap<String, ExpertReconstruction.Result> losses) {
            return new Result(tensorsPruned, fallbacksPerLayer, expertsFellBack, calibrationTokens, losses);
        }
    }

    /** An expert's key in {@link Result#reconstructed} and the job summaries: "layer/expert". */
    public static String expertKey(int layer, int expert) {
        return layer + "/" + expert;
    }

    /** How the pruned weights were chosen, as sparsity.json records it. */
    public record Provenance(SparsityPattern pattern, String method, boolean sequential,
                             ExpertReconstruction.Options reconstruction, long calibrationTokens) {
        public Provenance(String method, boolean sequential, ExpertReconstruction.Options reconstruction,
                          long calibrationTokens) {
            this(SparsityPattern.TWO_FOUR, method, sequential, reconstruction, calibrationTokens);
        }

        public Provenance(String method, boolean sequential, long calibrationTokens) {
            this(method, sequential, ExpertReconstruction.Options.NONE, calibrationTokens);
        }
    }

    /** Calibration tokens per expert that {@link ExpertReconstruction} tunes on, at most (the first ones routed). */
    public static final int RECONSTRUCTION_TOKENS = 16384;

    /** Chooses each expert weight's pruned form. */
    public interface PrunedExperts {
        /**
         * The weight [rows, cols] with the entries the pattern drops zeroed; null where no calibration token reached
         * its expert (magnitude then).
         */
        float[] pruned(ExpertTensor tensor, TensorRef dense);
    }

    public static Result sparsify(Path model, Path out, String method, List<int[]> calibration) throws IOException {
        return sparsify(model, out, method, false, calibration);
    }

    public static Result sparsify(Path model, Path out, String method, boolean sequential, List<int[]> calibration)
            throws IOException {
        return sparsify(model, out, method, sequential, ExpertReconstruction.Options.NONE, calibration);
    }

    public static Result sparsify(Path model, Path out, String method, boolean sequential,
                                  ExpertReconstruction.Options reconstruction, List<int[]> calibration)
            throws IOException {
        return sparsify(model, out, SparsityPattern.TWO_FOUR.userName(), method, sequential, reconstruction,
                calibration);
    }

    /**
     * @param pattern        "2:4" or "128:2:8"
     * @param reconstruction sparsegpt only: after each layer's SparseGPT, every expert's kept weights tuned to
     *                       reproduce the dense expert on the calibration tokens routed to it (steps 0: not)
     */
    public static Result sparsify(Path model, Path out, String pattern, String method, boolean sequential,
                                  ExpertReconstruction.Options reconstruction, List<int[]> calibration)
            throws IOException {
        SparsityPattern sparsity = SparsityPattern.parse(pattern);
        checkMethod(method, sequential, reconstruction);
        if (!method.equals("magnitude") && calibration.isEmpty()) {
            throw new IllegalArgumentException(method + " needs calibration data: pass --calibration FILE.jsonl");
        }
        ModelConfig config = ModelConfig.load(model);
        requirePerExpertTensors(model, config);
        SortedMap<String, ExpertReconstruction.Result> losses = new TreeMap<>();
        PrunedExperts pruned = switch (method) {
            case "sparsegpt" -> byName(pruneBySparseGpt(model, config, sparsity, calibration, sequential,
                    reconstruction, losses));
            case "wanda" -> byWanda(sparsity, inputNorms(model, config, calibration));
            default -> (tensor, dense) -> null;
        };
        long calibrationTokens = calibration.stream().mapToLong(s -> s.length).sum();
        return write(model, out, new Provenance(sparsity, method, sequential, reconstruction, calibrationTokens),
                pruned).withReconstructed(losses);
    }

    /**
     * Refuses a method this tool does not have, and settings that apply to another method, naming the option
     * ({@code --method}, {@code --sequential}, {@code --reconstruct-steps}).
     */
    public static void checkMethod(String method, boolean sequential, ExpertReconstruction.Options reconstruction) {
        if (!METHODS.contains(method)) {
            throw new IllegalArgumentException("--method must be one of " + METHODS + ", got '" + method + "'");
        }
        if (sequential && !method.equals("sparsegpt")) {
            throw new IllegalArgumentException("--sequential applies to --method sparsegpt only, got '" + method + "'");
        }
        if (reconstruction.steps() > 0 && !method.equals("sparsegpt")) {
            throw new IllegalArgumentException("--reconstruct-steps applies to --method sparsegpt only, got '" + method
                    + "'");
        }
    }

    /**
     * Refuses, before anything is written, a checkpoint whose experts are not stored per expert (fused 3-D tensors:
     * {@code experts.gate_up_proj}, Granite's {@code input_linear}): the sparse formats are written per expert, and
     * a copy with nothing pruned would be labelled sparse.
     */
    private static void requirePerExpertTensors(Path model, ModelConfig config) {
        try (Checkpoint ckpt = Checkpoint.open(model)) {
            for (String name : ckpt.tensorNames()) {
                if (ExpertTensor.parse(name).isPresent()) {
                    return;
                }
            }
        }
        throw new IllegalArgumentException("model " + model + " (" + config.family().modelType + ") stores its "
                + "experts fused (experts.gate_up_proj / block_sparse_moe.input_linear), not per expert "
                + "(experts.E.gate_proj.weight): sparsify writes per-expert tensors only");
    }

    /**
     * Writes the compressed checkpoint into {@code out}: every expert weight of {@code model} as {@code pruned}
     * chooses (magnitude where it has none), every other tensor unchanged, the non-weight files copied, and
     * sparsity.json.
     */
    public static Result write(Path model, Path out, Provenance how, PrunedExperts pruned) throws IOException {
        Files.createDirectories(out);
        copyNonWeightFiles(model, out);
        boolean calibrated = !how.method().equals("magnitude");
        SortedMap<Integer, Integer> fallbacks = new TreeMap<>();
        SortedMap<Integer, SortedSet<Integer>> fellBackExperts = new TreeMap<>();
        int count = 0;
        SparsityPattern pattern = how.pattern();
        // sorted, so that the same weights give the same file (Map.of's order changes from one JVM to the next)
        SafeTensorsWriter writer = new SafeTensorsWriter(new TreeMap<>(Map.of("format", "pt", "moescore_sparsity",
                pattern.userName())));
        try (Checkpoint ckpt = Checkpoint.open(model)) {
            for (String name : ckpt.tensorNames()) {
                TensorRef t = ckpt.get(name);
                DType stored = t.dtype() == DType.F32 ? DType.F32 : DType.BF16;
                ExpertTensor expert = ExpertTensor.parse(name).orElse(null);
                if (expert == null) {
                    writer.add(name, stored, t.toFloats(), t.shape());
                    continue;
                }
                int rows = (int) t.shape()[0];
                int cols = (int) t.shape()[1];
                try {
                    float[] w = pruned.pruned(expert, t);
                    if (w == null) {
                        if (calibrated) {
                            fallbacks.merge(expert.layer(), 1, Integer::sum);
                            fellBackExperts.computeIfAbsent(expert.layer(), l -> new TreeSet<>()).add(expert.expert());
                        }
                        w = pattern.pruneMagnitude(t.toFloats(), rows, cols);
                    } else if (w.length != rows * cols) {
                        throw new ModelFormatException("pruned " + name + " has " + w.length + " weights, but "
                                + model + " holds it as " + rows + "x" + cols);
                    }
                    pattern.addPacked(writer, name, stored, w, rows, cols);
                } catch (IllegalArgumentException e) {
                    throw new ModelFormatException(name + " in " + model + " cannot be pruned " + pattern.userName()
                            + ": " + e.getMessage());
                }
                count++;
            }
        }
        writer.write(out.resolve(Checkpoint.SINGLE_FILE));
        ObjectNode manifest = new ObjectMapper().createObjectNode();
        manifest.put("pattern", pattern.userName());
        manifest.put("method", how.method());
        if (how.method().equals("sparsegpt")) {
            manifest.put("sequential", how.sequential());
            manifest.put("percdamp", SparseGpt.PERCENT_DAMP);
            manifest.put("blocksize", SparseGpt.BLOCK_SIZE);
            ExpertReconstruction.Options r = how.reconstruction();
            if (r.steps() > 0) {
                ObjectNode tuned = manifest.putObject("expert_reconstruction");
                tuned.put("steps", r.steps());
                tuned.put("learning_rate", r.learningRate());
                tuned.put("batch_tokens", r.batch());
                tuned.put("seed", r.seed());
                tuned.put("max_tokens_per_expert", RECONSTRUCTION_TOKENS);
            }
        }
        manifest.put("source", model.toString());
        manifest.put("tensors_pruned", count);
        manifest.put("calibration_tokens", how.calibrationTokens());
        int fellBack = fallbacks.values().stream().mapToInt(Integer::intValue).sum();
        manifest.put("projections_without_calibration_fell_back_to_magnitude", fellBack);
        ObjectNode perLayer = manifest.putObject("fell_back_to_magnitude_per_layer");
        fallbacks.forEach((layer, n) -> perLayer.put(Integer.toString(layer), n));
        ObjectNode experts = manifest.putObject("experts_fell_back_to_magnitude");
        fellBackExperts.forEach((layer, ids) -> ids.forEach(experts.withArray(Integer.toString(layer))::add));
        new ObjectMapper().writerWithDefaultPrettyPrinter()
                .writeValue(out.resolve(SparsityPattern.MANIFEST).toFile(), manifest);
        if (count == 0) {
            throw new ModelFormatException("model " + model + " has no per-expert weights to prune (fused experts are "
                    + "not supported by the sparsify tool yet)");
        }
        return new Result(count, fallbacks, fellBackExperts, how.calibrationTokens());
    }

    private static PrunedExperts byName(Map<String, float[]> pruned) {
        return (tensor, dense) -> pruned.get(tensor.name());
    }

    private static PrunedExperts byWanda(SparsityPattern pattern, ExpertHessians squares) {
        return (tensor, dense) -> {
            double[] diagonal = squares.diagonal(tensor.layer(), tensor.expert(), tensor.input());
            return diagonal == null ? null : pruneWanda(pattern, dense.toFloats(), (int) dense.shape()[0],
                    (int) dense.shape()[1], diagonal);
        };
    }

    /**
     * A weight pruned by wanda: |w| times its input feature's norm over the calibration tokens, the square root of
     * the feature's sum of squares (diag of the expert's Hessian, {@link ExpertHessians#diagonals}).
     */
    public static float[] pruneWanda(SparsityPattern pattern, float[] w, int rows, int cols, double[] sumsOfSquares) {
        double[] norms = new double[sumsOfSquares.length];
        for (int i = 0; i < norms.length; i++) {
            norms[i] = Math.sqrt(sumsOfSquares[i]);
        }
        return pattern.pruneWanda(w, rows, cols, norms);
    }

    private static void copyNonWeightFiles(Path model, Path out) throws IOException {
        try (Stream<Path> files = Files.list(model)) {
            for (Path f : (Iterable<Path>) files::iterator) {
                String name = f.getFileName().toString();
                if (!name.endsWith(".safetensors") && !name.equals(Checkpoint.INDEX_FILE) && Files.isRegularFile(f)) {
                    Files.copy(f, out.resolve(name), StandardCopyOption.REPLACE_EXISTING);
                }
            }
        }
    }

    /**
     * Every expert weight pruned by SparseGPT, by tensor name; unreached experts' weights are left out. One
     * calibration pass per MoE layer, holding only that layer's Hessians (and, to reconstruct, its experts'
     * inputs); sequential passes run through a dense copy of the model whose earlier layers hold their pruned
     * weights. Reconstruction errors go into {@code losses}.
     */
    private static Map<String, float[]> pruneBySparseGpt(Path model, ModelConfig config, SparsityPattern pattern,
                                                         List<int[]> calibration, boolean sequential,
                                                         ExpertReconstruction.Options reconstruction,
                                                         SortedMap<String, ExpertReconstruction.Result> losses)
            throws IOException {
        Map<String, float[]> pruned = new HashMap<>();
        Path partlyPruned = sequential ? Files.createTempDirectory("moescore-sparsegpt-") : null;
        try (Checkpoint ckpt = Checkpoint.open(model)) {
            Path calibrationModel = model;
            for (int layer = 0; layer < config.numLayers(); layer++) {
                if (!config.moeLayers()[layer]) {
                    continue;
                }
                ExpertHessians hessians = new ExpertHessians(layer);
                ExpertInputs inputs = reconstruction.steps() > 0 ? new ExpertInputs(RECONSTRUCTION_TOKENS, layer)
                        : null;
                ExpertCalibration.run(calibrationModel, calibration,
                        inputs == null ? hessians : RoutedInputs.both(hessians, inputs));
                for (String name : ckpt.tensorNames()) {
                    ExpertTensor expert = ExpertTensor.parse(name).orElse(null);
                    if (expert == null || expert.layer() != layer) {
                        continue;
                    }
                    double[] h = hessians.get(layer, expert.expert(), expert.input());
                    if (h != null) {
                        pruned.put(name, pruneSparseGpt(ckpt, model.toString(), expert, h, pattern));
                    }
                }
                if (inputs != null) {
                    reconstructLayer(ckpt, layer, pruned, inputs, reconstruction, losses);
                }
                if (sequential) {
                    writeDenseCopy(model, pruned, partlyPruned);
                    calibrationModel = partlyPruned;
                }
            }
        } finally {
            if (partlyPruned != null) {
                deleteRecursively(partlyPruned);
            }
        }
        return pruned;
    }

    /**
     * One expert weight of {@code dense} pruned to a pattern by SparseGPT on its input's Hessian [cols, cols].
     *
     * @param where the model's name for messages
     */
    public static float[] pruneSparseGpt(Checkpoint dense, String where, ExpertTensor expert, double[] hessian,
                                         SparsityPattern pattern) {
        TensorRef t = dense.get(expert.name());
        int rows = (int) t.shape()[0];
        int cols = (int) t.shape()[1];
        if (hessian.length != (long) cols * cols) {
            throw new ModelFormatException(expert.name() + " in " + where + " has " + cols + " input columns but "
                    + "its calibration inputs have " + Math.round(Math.sqrt(hessian.length)));
        }
        return SparseGpt.prune(t.toFloats(), rows, cols, hessian, pattern);
    }

    /**
     * Tunes, in {@code pruned}, the kept weights of every expert of a layer that calibration reached
     * ({@link ExpertReconstruction}) against the checkpoint's dense weights.
     */
    private static void reconstructLayer(Checkpoint ckpt, int layer, Map<String, float[]> pruned, ExpertInputs inputs,
                                         ExpertReconstruction.Options options,
                                         SortedMap<String, ExpertReconstruction.Result> losses) {
        ExpertTensor.ofLayer(ckpt.tensorNames(), layer).forEach((expert, p) -> {
            int tokens = inputs.tokens(layer, expert);
            if (tokens == 0 || !pruned.containsKey(p.gate().name()) || !pruned.containsKey(p.down().name())) {
                return;
            }
            losses.put(expertKey(layer, expert), ExpertReconstruction.reconstruct(ckpt, p, pruned.get(p.gate().name()),
                    pruned.get(p.up().name()), pruned.get(p.down().name()), inputs.rows(layer, expert), tokens,
                    options, ExpertReconstruction.CPU));
        });
    }

    /**
     * The model with the given weights replaced (those fp32, the rest as stored; dense) written into {@code dir}:
     * what the next sequential calibration pass runs through.
     */
    public static void writeDenseCopy(Path model, Map<String, float[]> replaced, Path dir) throws IOException {
        Files.createDirectories(dir);
        copyNonWeightFiles(model, dir);
        Files.deleteIfExists(dir.resolve(Checkpoint.INDEX_FILE));
        SafeTensorsWriter writer = new SafeTensorsWriter(Map.of("format", "pt"));
        try (Checkpoint ckpt = Checkpoint.open(model)) {
            for (String name : ckpt.tensorNames()) {
                TensorRef t = ckpt.get(name);
                float[] values = replaced.containsKey(name) ? replaced.get(name) : t.toFloats();
                writer.add(name, replaced.containsKey(name) || t.dtype() == DType.F32 ? DType.F32 : DType.BF16,
                        values, t.shape());
            }
        }
        writer.write(dir.resolve(Checkpoint.SINGLE_FILE));
    }

    private static void deleteRecursively(Path dir) throws IOException {
        try (Stream<Path> all = Files.walk(dir)) {
            for (Path p : (Iterable<Path>) all.sorted(java.util.Comparator.reverseOrder())::iterator) {
                Files.deleteIfExists(p);
            }
        }
    }

    /** Per (layer, expert, projection input) each input feature's sum of squares over the routed calibration tokens. */
    static ExpertHessians inputNorms(Path model, ModelConfig config, List<int[]> calibration) {
        ExpertHessians squares = ExpertHessians.diagonals(java.util.stream.IntStream.range(0, config.numLayers())
                .filter(l -> config.moeLayers()[l]).toArray());
        ExpertCalibration.run(model, calibration, squares);
        return squares;
    }
}
