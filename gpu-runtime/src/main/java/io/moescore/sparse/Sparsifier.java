package io.moescore.sparse;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moescore.backend.cpu.CpuBackend;
import io.moescore.engine.Engine;
import io.moescore.engine.ModelWeights;
import io.moescore.engine.ScoreOptions;
import io.moescore.engine.TokenBatch;
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
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Writes a 2:4 compressed copy of a model: every routed expert's gate, up and down weight pruned along its input
 * dimension (magnitude, or wanda: |w| times the norm of its input feature over calibration tokens routed to
 * that expert, gathered by our CPU engine) and packed ({@code NAME.sp24_values}, {@code NAME.sp24_meta}); all
 * other tensors unchanged; {@code sparsity.json} records pattern, method and calibration. Executors load the
 * result directly; experts no calibration token reached fall back to magnitude.
 */
public final class Sparsifier {
    private static final Pattern EXPERT = Pattern.compile(
            "model\\.layers\\.(\\d+)\\.(?:mlp|block_sparse_moe)\\.experts\\.(\\d+)\\.(gate_proj|up_proj|down_proj|w1|w3|w2)\\.weight");

    private Sparsifier() {
    }

    /** Summary of a run. */
    public record Result(int tensorsPruned, int expertsWithoutCalibration, long calibrationTokens) {
    }

    public static Result sparsify(Path model, Path out, String method, List<int[]> calibration) throws IOException {
        if (!method.equals("magnitude") && !method.equals("wanda")) {
            throw new IllegalArgumentException("--method must be magnitude or wanda, got '" + method + "'");
        }
        ModelConfig config = ModelConfig.load(model);
        Map<String, double[]> norms = method.equals("wanda") ? inputNorms(model, config, calibration) : Map.of();
        long calibrationTokens = calibration.stream().mapToLong(s -> s.length).sum();
        Files.createDirectories(out);
        try (Stream<Path> files = Files.list(model)) {
            for (Path f : (Iterable<Path>) files::iterator) {
                String name = f.getFileName().toString();
                if (!name.endsWith(".safetensors") && !name.equals("model.safetensors.index.json") && Files.isRegularFile(f)) {
                    Files.copy(f, out.resolve(name), StandardCopyOption.REPLACE_EXISTING);
                }
            }
        }
        int pruned = 0;
        int uncalibrated = 0;
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
                float[] w = t.toFloats();
                double[] norm = norms.get(m.group(1) + "/" + m.group(2) + "/" + projection(m.group(3)));
                float[] sparse;
                if (method.equals("wanda") && norm != null) {
                    sparse = Sparse24.pruneWanda(w, rows, cols, norm);
                } else {
                    uncalibrated += method.equals("wanda") ? 1 : 0;
                    sparse = Sparse24.pruneMagnitude(w, rows, cols);
                }
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
        manifest.put("source", model.toString());
        manifest.put("tensors_pruned", pruned);
        manifest.put("calibration_tokens", calibrationTokens);
        manifest.put("projections_without_calibration_fell_back_to_magnitude", uncalibrated);
        new ObjectMapper().writerWithDefaultPrettyPrinter().writeValue(out.resolve("sparsity.json").toFile(), manifest);
        if (pruned == 0) {
            throw new ModelFormatException("model " + model + " has no per-expert weights to prune (fused experts are "
                    + "not supported by the sparsify tool yet)");
        }
        return new Result(pruned, uncalibrated, calibrationTokens);
    }

    /** gate and up share their input (the normed hidden state); down reads the SwiGLU product. */
    private static String projection(String name) {
        return name.equals("down_proj") || name.equals("w2") ? "down" : "gate_up";
    }

    /** Per (layer, expert, projection input) the L2 norm of every input feature over the routed calibration tokens. */
    static Map<String, double[]> inputNorms(Path model, ModelConfig config, List<int[]> calibration) {
        if (calibration.isEmpty()) {
            throw new IllegalArgumentException("wanda needs calibration data: pass --calibration FILE.jsonl");
        }
        int[] moeLayers = java.util.stream.IntStream.range(0, config.numLayers()).filter(l -> config.moeLayers()[l]).toArray();
        Map<String, double[]> sums = new HashMap<>();
        int[] call = {0};
        try (CpuBackend cpu = new CpuBackend(Runtime.getRuntime().availableProcessors());
             Engine engine = Engine.load(model, cpu)) {
            cpu.observeExpertInputs((expert, x, rows, hidden, swiglu, ffn) -> {
                // the backend runs experts 0..E-1 in order once per MoE layer and forward pass
                int layer = moeLayers[(call[0] / config.numExperts()) % moeLayers.length];
                call[0]++;
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
            for (int[] sequence : calibration) {
                call[0] = 0;
                engine.score(TokenBatch.of(sequence), ScoreOptions.SUMS_ONLY);
            }
        }
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
