package io.moescore.sparse;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moescore.engine.ModelWeights;
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
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Writes a 2:4 compressed copy of a model: every routed expert's gate, up and down weight pruned along its input
 * dimension and packed ({@code NAME.sp24_values}, {@code NAME.sp24_meta}); all other tensors unchanged;
 * {@code sparsity.json} records pattern, method and calibration. Methods: magnitude; wanda (|w| times the norm of
 * its input feature over the calibration tokens routed to that expert); sparsegpt ({@link SparseGpt} on the
 * expert's Hessian X^T X, one layer at a time; sequential: layer l calibrated through the already pruned layers
 * before it). Calibration runs on our CPU engine. Experts no calibration token reached fall back to magnitude.
 */
public final class Sparsifier {
    private static final Pattern EXPERT = Pattern.compile(
            "model\\.layers\\.(\\d+)\\.(?:mlp|block_sparse_moe)\\.experts\\.(\\d+)\\.(gate_proj|up_proj|down_proj|w1|w3|w2)\\.weight");
    public static final List<String> METHODS = List.of("magnitude", "wanda", "sparsegpt");

    private Sparsifier() {
    }

    /**
     * Summary of a run. fallbacksPerLayer: per layer index, the expert weights that fell back to magnitude
     * because no calibration token reached their expert (empty for magnitude).
     */
    public record Result(int tensorsPruned, SortedMap<Integer, Integer> fallbacksPerLayer, long calibrationTokens) {
        public int expertsWithoutCalibration() {
            return fallbacksPerLayer.values().stream().mapToInt(Integer::intValue).sum();
        }
    }

    public static Result sparsify(Path model, Path out, String method, List<int[]> calibration) throws IOException {
        return sparsify(model, out, method, false, calibration);
    }

    public static Result sparsify(Path model, Path out, String method, boolean sequential, List<int[]> calibration)
            throws IOException {
        if (!METHODS.contains(method)) {
            throw new IllegalArgumentException("--method must be one of " + METHODS + ", got '" + method + "'");
        }
        if (sequential && !method.equals("sparsegpt")) {
            throw new IllegalArgumentException("--sequential applies to --method sparsegpt only, got '" + method + "'");
        }
        if (!method.equals("magnitude") && calibration.isEmpty()) {
            throw new IllegalArgumentException(method + " needs calibration data: pass --calibration FILE.jsonl");
        }
        ModelConfig config = ModelConfig.load(model);
        Map<String, double[]> norms = method.equals("wanda") ? inputNorms(model, config, calibration) : Map.of();
        SortedMap<Integer, Integer> fallbacks = new TreeMap<>();
        Map<String, float[]> sparseGpt = method.equals("sparsegpt")
                ? pruneBySparseGpt(model, config, calibration, sequential, fallbacks) : Map.of();
        long calibrationTokens = calibration.stream().mapToLong(s -> s.length).sum();
        Files.createDirectories(out);
        copyNonWeightFiles(model, out);
        int pruned = 0;
        SafeTensorsWriter writer = new SafeTensorsWriter(Map.of("format", "pt", "moescore_sparsity", "2:4"));
        try (Checkpoint ckpt = Checkpoint.open(model)) {
            for (String name : ckpt.tensorNames()) {
                TensorRef t = ckpt.get(name);
                DType stored = t.dtype() == DType.F32 ? DType.F32 : DType.BF16;
                Matcher m = EXPERT.matcher(name);
                if (!m.matches()) {
                    writer.add(name, stored, t.toFloats(), t.shape());
                    continue;
                }
                int rows = (int) t.shape()[0];
                int cols = (int) t.shape()[1];
                float[] sparse = switch (method) {
                    case "sparsegpt" -> sparseGpt.get(name);
                    case "wanda" -> {
                        double[] norm = norms.get(m.group(1) + "/" + m.group(2) + "/" + projectionInput(m.group(3)));
                        if (norm == null) {
                            fallbacks.merge(Integer.parseInt(m.group(1)), 1, Integer::sum);
                            yield Sparse24.pruneMagnitude(t.toFloats(), rows, cols);
                        }
                        yield Sparse24.pruneWanda(t.toFloats(), rows, cols, norm);
                    }
                    default -> Sparse24.pruneMagnitude(t.toFloats(), rows, cols);
                };
                Sparse24.Packed p = Sparse24.pack(sparse, rows, cols);
                writer.add(name + ModelWeights.SPARSE_VALUES, stored, p.values(), rows, cols / 2);
                writer.addInts(name + ModelWeights.SPARSE_META, p.meta(), rows, cols / 32);
                pruned++;
            }
        }
        writer.write(out.resolve(Checkpoint.SINGLE_FILE));
        ObjectNode manifest = new ObjectMapper().createObjectNode();
        manifest.put("pattern", "2:4");
        manifest.put("method", method);
        if (method.equals("sparsegpt")) {
            manifest.put("sequential", sequential);
            manifest.put("percdamp", SparseGpt.PERCENT_DAMP);
            manifest.put("blocksize", SparseGpt.BLOCK_SIZE);
        }
        manifest.put("source", model.toString());
        manifest.put("tensors_pruned", pruned);
        manifest.put("calibration_tokens", calibrationTokens);
        int fellBack = fallbacks.values().stream().mapToInt(Integer::intValue).sum();
        manifest.put("projections_without_calibration_fell_back_to_magnitude", fellBack);
        ObjectNode perLayer = manifest.putObject("fell_back_to_magnitude_per_layer");
        fallbacks.forEach((layer, count) -> perLayer.put(Integer.toString(layer), count));
        new ObjectMapper().writerWithDefaultPrettyPrinter().writeValue(out.resolve("sparsity.json").toFile(), manifest);
        if (pruned == 0) {
            throw new ModelFormatException("model " + model + " has no per-expert weights to prune (fused experts are "
                    + "not supported by the sparsify tool yet)");
        }
        return new Result(pruned, fallbacks, calibrationTokens);
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

    /** gate and up share their input (the normed hidden state); down reads the SwiGLU product. */
    private static String projectionInput(String name) {
        return name.equals("down_proj") || name.equals("w2") ? "down" : "gate_up";
    }

    /**
     * Every expert weight pruned by SparseGPT, by tensor name. One calibration pass per MoE layer, holding only
     * that layer's Hessians; sequential passes run through a dense copy of the model whose earlier layers hold
     * their pruned weights.
     */
    private static Map<String, float[]> pruneBySparseGpt(Path model, ModelConfig config, List<int[]> calibration,
                                                         boolean sequential, SortedMap<Integer, Integer> fallbacks)
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
                ExpertCalibration.run(calibrationModel, config, calibration, hessians);
                for (String name : ckpt.tensorNames()) {
                    Matcher m = EXPERT.matcher(name);
                    if (!m.matches() || Integer.parseInt(m.group(1)) != layer) {
                        continue;
                    }
                    TensorRef t = ckpt.get(name);
                    int rows = (int) t.shape()[0];
                    int cols = (int) t.shape()[1];
                    double[] h = hessians.get(layer, Integer.parseInt(m.group(2)), projectionInput(m.group(3)));
                    if (h == null) {
                        fallbacks.merge(layer, 1, Integer::sum);
                        pruned.put(name, Sparse24.pruneMagnitude(t.toFloats(), rows, cols));
                    } else if (h.length != (long) cols * cols) {
                        throw new ModelFormatException(name + " in " + model + " has " + cols + " input columns but "
                                + "its calibration inputs have " + Math.round(Math.sqrt(h.length)));
                    } else {
                        pruned.put(name, toFloats(SparseGpt.prune24(toDoubles(t.toFloats()), rows, cols, h)));
                    }
                }
                if (sequential) {
                    writeDenseCopy(model, ckpt, pruned, partlyPruned);
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

    /** The model with the given weights replaced (fp32, dense), for the next sequential calibration pass. */
    private static void writeDenseCopy(Path model, Checkpoint ckpt, Map<String, float[]> replaced, Path dir)
            throws IOException {
        copyNonWeightFiles(model, dir);
        Files.deleteIfExists(dir.resolve(Checkpoint.INDEX_FILE));
        SafeTensorsWriter writer = new SafeTensorsWriter(Map.of("format", "pt"));
        for (String name : ckpt.tensorNames()) {
            TensorRef t = ckpt.get(name);
            float[] values = replaced.getOrDefault(name, t.toFloats());
            writer.add(name, replaced.containsKey(name) || t.dtype() == DType.F32 ? DType.F32 : DType.BF16, values,
                    t.shape());
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

    private static double[] toDoubles(float[] v) {
        double[] out = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            out[i] = v[i];
        }
        return out;
    }

    private static float[] toFloats(double[] v) {
        float[] out = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            out[i] = (float) v[i];
        }
        return out;
    }

    /** Per (layer, expert, projection input) the L2 norm of every input feature over the routed calibration tokens. */
    static Map<String, double[]> inputNorms(Path model, ModelConfig config, List<int[]> calibration) {
        Map<String, double[]> sums = new HashMap<>();
        ExpertCalibration.run(model, config, calibration, (layer, expert, x, rows, hidden, swiglu, ffn) -> {
            if (rows.length == 0) {
                return;   // unreached so far: an all-zero norm would keep each group's first two, not fall back
            }
            double[] in = sums.computeIfAbsent(layer + "/" + expert + "/gate_up", k -> new double[hidden]);
            double[] mid = sums.computeIfAbsent(layer + "/" + expert + "/down", k -> new double[ffn]);
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
