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
     * because no calibration token reached their expert (empty for magnitude); expertsFellBack: those experts.
     */
    public record Result(int tensorsPruned, SortedMap<Integer, Integer> fallbacksPerLayer,
                         SortedMap<Integer, SortedSet<Integer>> expertsFellBack, long calibrationTokens) {
        public int expertsWithoutCalibration() {
            return fallbacksPerLayer.values().stream().mapToInt(Integer::intValue).sum();
        }
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
        if (!method.equals("magnitude") && calibration.isEmpty()) {
            throw new IllegalArgumentException(method + " needs calibration data: pass --calibration FILE.jsonl");
        }
        ModelConfig config = ModelConfig.load(model);
        requirePerExpertTensors(model, config);
        PrunedExperts pruned = switch (method) {
            case "sparsegpt" -> byName(pruneBySparseGpt(model, config, sparsity, calibration, sequential,
                    reconstruction));
            case "wanda" -> byWanda(sparsity, inputNorms(model, calibration));
            default -> (tensor, dense) -> null;
        };
        long calibrationTokens = calibration.stream().mapToLong(s -> s.length).sum();
        return write(model, out, new Provenance(sparsity, method, sequential, reconstruction, calibrationTokens),
                pruned);
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
        SafeTensorsWriter writer = new SafeTensorsWriter(Map.of("format", "pt", "moescore_sparsity",
                pattern.userName()));
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

    private static PrunedExperts byWanda(SparsityPattern pattern, Map<String, double[]> norms) {
        return (tensor, dense) -> {
            double[] norm = norms.get(tensor.layer() + "/" + tensor.expert() + "/" + tensor.input());
            if (norm == null) {
                return null;
            }
            return pattern.pruneWanda(dense.toFloats(), (int) dense.shape()[0], (int) dense.shape()[1], norm);
        };
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
     * weights.
     */
    private static Map<String, float[]> pruneBySparseGpt(Path model, ModelConfig config, SparsityPattern pattern,
                                                         List<int[]> calibration, boolean sequential,
                                                         ExpertReconstruction.Options reconstruction)
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
                ExpertInputs inputs = reconstruction.steps() > 0 ? new ExpertInputs(layer, RECONSTRUCTION_TOKENS) : null;
                ExpertCalibration.run(calibrationModel, calibration,
                        inputs == null ? hessians : RoutedInputs.both(hessians, inputs));
                for (String name : ckpt.tensorNames()) {
                    ExpertTensor expert = ExpertTensor.parse(name).orElse(null);
                    if (expert == null || expert.layer() != layer) {
                        continue;
                    }
                    TensorRef t = ckpt.get(name);
                    int rows = (int) t.shape()[0];
                    int cols = (int) t.shape()[1];
                    double[] h = hessians.get(layer, expert.expert(), expert.input());
                    if (h == null) {
                        continue;
                    }
                    if (h.length != (long) cols * cols) {
                        throw new ModelFormatException(name + " in " + model + " has " + cols + " input columns but "
                                + "its calibration inputs have " + Math.round(Math.sqrt(h.length)));
                    }
                    pruned.put(name, SparseGpt.prune(t.toFloats(), rows, cols, h, pattern));
                }
                if (inputs != null) {
                    reconstructLayer(ckpt, layer, pruned, inputs, reconstruction);
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
     * Tunes, in {@code pruned}, the kept weights of every expert of a layer that calibration reached
     * ({@link ExpertReconstruction}) against the checkpoint's dense weights.
     */
    private static void reconstructLayer(Checkpoint ckpt, int layer, Map<String, float[]> pruned, ExpertInputs inputs,
                                         ExpertReconstruction.Options options) {
        Map<Integer, Map<String, ExpertTensor>> byExpert = new TreeMap<>();
        for (String name : ckpt.tensorNames()) {
            ExpertTensor.parse(name).filter(e -> e.layer() == layer && pruned.containsKey(name)).ifPresent(e ->
                    byExpert.computeIfAbsent(e.expert(), k -> new HashMap<>()).put(e.role(), e));
        }
        byExpert.forEach((expert, roles) -> {
            int tokens = inputs.tokens(expert);
            if (tokens == 0 || roles.size() != 3) {
                return;
            }
            ExpertTensor gate = roles.get("gate");
            ExpertTensor up = roles.get("up");
            ExpertTensor down = roles.get("down");
            TensorRef g = ckpt.get(gate.name());
            int ffn = (int) g.shape()[0];
            ExpertReconstruction.tune(inputs.rows(expert), tokens, inputs.hidden(), ffn, g.toFloats(),
                    ckpt.get(up.name()).toFloats(), ckpt.get(down.name()).toFloats(), pruned.get(gate.name()),
                    pruned.get(up.name()), pruned.get(down.name()), options);
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

    /** Per (layer, expert, projection input) the L2 norm of every input feature over the routed calibration tokens. */
    static Map<String, double[]> inputNorms(Path model, List<int[]> calibration) {
        Map<String, double[]> sums = new HashMap<>();
        ExpertCalibration.run(model, calibration, (layer, expert, x, rows, hidden, swiglu, ffn) -> {
            if (rows.length == 0) {
                return;   // unreached so far: an all-zero norm would keep each group's first two, not fall back
            }
            String key = layer + "/" + expert + "/";
            double[] in = sums.computeIfAbsent(key + ExpertHessians.GATE_UP, k -> new double[hidden]);
            double[] mid = sums.computeIfAbsent(key + ExpertHessians.DOWN, k -> new double[ffn]);
            for (int r = 0; r < rows.length; r++) {
                for (int c = 0; c < hidden; c++) {
                    double v = x[rows[r] * hidden + c];
                    in[c] += v * v;
                }
                for (int c = 0; c < ffn; c++) {
                    double v = swiglu[r * ffn + c];
                    mid[c] += v * v;
                }
            }
        });
        sums.replaceAll((k, v) -> {
            double[] norm = new double[v.length];
            for (int i = 0; i < v.length; i++) {
                norm[i] = Math.sqrt(v[i]);
            }
            return norm;
        });
        return sums;
    }
}
