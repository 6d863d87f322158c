package io.moescore.sparsify;

import io.moescore.sparse.Sparse24;
import io.moescore.sparse.SparsityPattern;
import io.moescore.sparse.VectorSparse;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moescore.TestModels;
import io.moescore.backend.Backend;
import io.moescore.backend.cpu.CpuBackend;
import io.moescore.engine.Engine;
import io.moescore.engine.ModelWeights;
import io.moescore.engine.ScoreOptions;
import io.moescore.batch.SequenceScore;
import io.moescore.batch.TokenBatch;
import io.moescore.model.Checkpoint;
import io.moescore.model.DType;
import io.moescore.model.ModelConfig;
import io.moescore.model.ModelFormatException;
import io.moescore.model.SafeTensorsWriter;
import io.moescore.model.TensorRef;
import java.io.IOException;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BiFunction;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code sparsify --pattern 128:2:8} on the demo model (hidden 192: a full and a half 128-column slice; ffn 384):
 * the checkpoint loads through {@link Backend#vectorSparseExpertWeights} and scores exactly like the dense model
 * whose expert weights were pruned the same way; malformed checkpoints fail naming the tensor.
 */
class SparsifierVectorSparseTest {
    private static final String W1 = "model.layers.%d.block_sparse_moe.experts.%d.w1.weight";
    private static final String W2 = "model.layers.%d.block_sparse_moe.experts.%d.w2.weight";

    @TempDir
    static Path shared;
    @TempDir
    Path dir;

    static Path magnitude;

    @BeforeAll
    static void sparsifyByMagnitude() throws IOException {
        magnitude = shared.resolve("magnitude");
        Sparsifier.sparsify(TestModels.demoModel(), magnitude, "128:2:8", "magnitude", false,
                ExpertReconstruction.Options.NONE, List.of());
    }

    @Test
    void magnitudeCheckpointScoresLikeTheDenseModelPrunedTheSameWay() throws Exception {
        Path model = TestModels.demoModel();
        JsonNode manifest = new ObjectMapper().readTree(magnitude.resolve("sparsity.json").toFile());
        assertEquals("128:2:8", manifest.get("pattern").asText());
        assertEquals("magnitude", manifest.get("method").asText());
        assertEquals(4 * 8 * 3, manifest.get("tensors_pruned").asInt());
        try (Checkpoint c = Checkpoint.open(magnitude)) {
            TensorRef keep = c.get(W1.formatted(0, 0) + SparsityPattern.VECTOR_SPARSE_KEEP);
            assertEquals(DType.U8, keep.dtype());
            assertArrayEquals(new long[] {384 / 2, 2}, keep.shape(), "w1 [384, 192]: 192 pairs, 2 slices");
            assertArrayEquals(new long[] {192 / 2, 3}, c.get(W2.formatted(0, 0) + ".vs128_keep").shape());
            assertArrayEquals(new long[] {384 / 2, 192 / 2}, c.get(W1.formatted(0, 0) + ".sp24_values").shape());
            assertArrayEquals(new long[] {384 / 2, 192 / 32}, c.get(W1.formatted(0, 0) + ".sp24_meta").shape());
            assertFalse(c.has(W1.formatted(0, 0)), "no dense copy of a pruned weight");
        }

        Path reference = dir.resolve("reference");
        Sparsifier.writeDenseCopy(model, prunedExpertWeights(model,
                (dense, shape) -> VectorSparse.pruneMagnitude(dense, shape[0], shape[1])), reference);

        List<String> placed = new ArrayList<>();
        double[] sparse = scores(magnitude, recording(placed));
        assertEquals(List.of("vectorSparseExpertWeights", "vectorSparseExpertWeights", "vectorSparseExpertWeights",
                "vectorSparseExpertWeights"), placed, "every MoE layer's experts are placed as 128:2:8");
        assertArrayEquals(scores(reference, new CpuBackend(2)), sparse);
        assertNotEquals(scores(model, new CpuBackend(2))[0], sparse[0], "pruning 75% changes the scores");

        List<String> prunedOnLoad = new ArrayList<>();
        assertArrayEquals(sparse, scores(model, recording(prunedOnLoad), SparsityPattern.VECTOR_128_2_8),
                "pruning on load gives the same weights");
        assertEquals(4, prunedOnLoad.size());
    }

    @Test
    void wandaWeighsByTheCalibrationInputNorms() throws Exception {
        Path model = TestModels.demoModel();
        List<int[]> calibration = CalibrationRows.read(TestModels.repoRoot().resolve(
                "demo/calibration.jsonl")).subList(0, 2);
        Path wanda = dir.resolve("wanda");
        Sparsifier.Result result = Sparsifier.sparsify(model, wanda, "128:2:8", "wanda", false,
                ExpertReconstruction.Options.NONE, calibration);
        assertEquals("wanda", new ObjectMapper().readTree(wanda.resolve("sparsity.json").toFile())
                .get("method").asText());
        ExpertHessians squares = Sparsifier.inputNorms(model, io.moescore.model.ModelConfig.load(model), calibration);
        int reached = 0;
        try (Checkpoint dense = Checkpoint.open(model)) {
            for (int e = 0; e < 8; e++) {
                double[] sums = squares.diagonal(0, e, ExpertHessians.DOWN);
                double[] norm = sums == null ? null : java.util.Arrays.stream(sums).map(Math::sqrt).toArray();
                String name = W2.formatted(0, e);
                float[] w = dense.get(name).toFloats();
                float[] expected = norm == null ? VectorSparse.pruneMagnitude(w, 192, 384)
                        : VectorSparse.pruneWanda(w, 192, 384, norm);
                assertArrayEquals(expected, stored(wanda, name, 192, 384), name);
                if (norm != null) {
                    reached++;
                    assertFalse(java.util.Arrays.equals(expected, VectorSparse.pruneMagnitude(w, 192, 384)),
                            name + ": wanda chooses other weights than magnitude");
                }
            }
        }
        assertTrue(reached > 0, "calibration reaches some expert of layer 0");
        assertEquals(3 * (8 - reached), result.fallbacksPerLayer().getOrDefault(0, 0), "unreached: magnitude");
    }

    /**
     * sparsegpt: each reached expert's weight is SparseGpt's 128:2:8 on its calibration Hessian (kept weights
     * updated, so not magnitude's), stored in the pattern and the checkpoint's bf16; unreached ones fall back to
     * magnitude; it scores.
     */
    @Test
    void sparseGptPrunesCalibratedExpertsToThePattern() throws Exception {
        Path model = TestModels.demoModel();
        List<int[]> calibration = CalibrationRows.read(TestModels.repoRoot().resolve(
                "demo/calibration.jsonl")).subList(0, 2);
        Path out = dir.resolve("sparsegpt");
        Sparsifier.sparsify(model, out, "128:2:8", "sparsegpt", false, ExpertReconstruction.Options.NONE,
                calibration);
        JsonNode manifest = new ObjectMapper().readTree(out.resolve("sparsity.json").toFile());
        assertEquals("128:2:8", manifest.get("pattern").asText());
        assertEquals("sparsegpt", manifest.get("method").asText());
        ExpertHessians hessians = new ExpertHessians(0);
        ExpertCalibration.run(model, calibration, hessians);
        int reached = 0;
        try (Checkpoint dense = Checkpoint.open(model)) {
            for (int e = 0; e < 8; e++) {
                double[] h = hessians.get(0, e, ExpertHessians.DOWN);
                String name = W2.formatted(0, e);
                float[] w = dense.get(name).toFloats();
                float[] magnitudePruned = VectorSparse.pruneMagnitude(w, 192, 384);
                float[] expected = h == null ? magnitudePruned
                        : SparseGpt.prune(w, 192, 384, h, SparsityPattern.VECTOR_128_2_8);
                for (int i = 0; i < expected.length; i++) {  // stored in the checkpoint's bf16
                    expected[i] = Float.intBitsToFloat(SafeTensorsWriter.toBf16(expected[i]) << 16);
                }
                assertArrayEquals(expected, stored(out, name, 192, 384), name);
                if (h != null) {
                    reached++;
                    assertFalse(java.util.Arrays.equals(expected, magnitudePruned), name + ": SparseGPT updates");
                }
            }
        }
        assertTrue(reached > 0, "calibration reaches some expert of layer 0");
        for (double score : scores(out, new CpuBackend(2))) {
            assertTrue(Double.isFinite(score), "scores " + score);
        }
    }

    @Test
    void unknownPatternsAreRefusedNamingTheOption() {
        Path model = TestModels.demoModel();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Sparsifier.sparsify(model,
                dir.resolve("b"), "4:8", "magnitude", false, ExpertReconstruction.Options.NONE, List.of()));
        assertTrue(e.getMessage().contains("--pattern") && e.getMessage().contains("4:8"), e.getMessage());
        assertFalse(Files.exists(dir.resolve("b")), "nothing written");
    }


    /** Fused expert tensors (OLMoE's gate_up_proj here; Granite's input_linear) are refused before writing. */
    @Test
    void fusedExpertsAreRefusedBeforeWriting() {
        Path fused = TestModels.repoRoot().resolve("gpu-runtime/src/test/resources/hf/olmoe-fp32-fused");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Sparsifier.sparsify(fused,
                dir.resolve("f"), "2:4", "magnitude", false, ExpertReconstruction.Options.NONE, List.of()));
        assertTrue(e.getMessage().contains("fused") && e.getMessage().contains("olmoe"), e.getMessage());
        assertFalse(Files.exists(dir.resolve("f")), "nothing written");
    }

    @Test
    void withoutItsManifestTheTensorsTellThePattern() throws Exception {
        Path copy = rewritten("no-manifest", (name, t) -> t);
        Files.delete(copy.resolve("sparsity.json"));
        List<String> placed = new ArrayList<>();
        assertArrayEquals(scores(magnitude, new CpuBackend(2)), scores(copy, recording(placed)));
        assertEquals(4, placed.stream().filter("vectorSparseExpertWeights"::equals).count());
    }

    @Test
    void malformedCheckpointsNameTheTensor() throws Exception {
        String keep = W2.formatted(1, 3) + SparsityPattern.VECTOR_SPARSE_KEEP;
        assertLoadFails(rewritten("no-keep", (name, t) -> name.equals(keep) ? null : t), keep, "no tensor");
        assertLoadFails(rewritten("keep-shape", (name, t) -> !name.equals(keep) ? t
                : new Rewritten(new byte[96 * 2], 96, 2)), keep, "[96, 2]");
        assertLoadFails(rewritten("keep-value", (name, t) -> {
            if (!name.equals(keep)) {
                return t;
            }
            byte[] choices = t.toBytes();
            choices[5] = 2;
            return new Rewritten(choices, t.shape());
        }), keep, "neither 0 nor 1");
        String values = W1.formatted(2, 0) + SparsityPattern.SPARSE_VALUES;
        assertLoadFails(rewritten("values-shape", (name, t) -> !name.equals(values) ? t
                : new Rewritten(t.toFloats(), 192, 2, 48)), values, "shape");
    }

    /** The sparse checkpoint's weight, decompressed. */
    private static float[] stored(Path sparse, String name, int rows, int cols) {
        try (Checkpoint c = Checkpoint.open(sparse)) {
            Sparse24.Packed condensed = new Sparse24.Packed(rows / 2, cols, c.get(name + ".sp24_values").toFloats(),
                    c.get(name + ".sp24_meta").toInts());
            return VectorSparse.decompress(new VectorSparse.Packed(rows, cols,
                    c.get(name + SparsityPattern.VECTOR_SPARSE_KEEP).toBytes(), condensed));
        }
    }

    private static Map<String, float[]> prunedExpertWeights(Path model, BiFunction<float[], int[], float[]> prune) {
        Map<String, float[]> out = new HashMap<>();
        try (Checkpoint c = Checkpoint.open(model)) {
            for (String name : c.tensorNames()) {
                if (ExpertTensor.parse(name).isPresent()) {
                    TensorRef t = c.get(name);
                    out.put(name, prune.apply(t.toFloats(), new int[] {(int) t.shape()[0], (int) t.shape()[1]}));
                }
            }
        }
        return out;
    }

    private static double[] scores(Path model, Backend backend) throws IOException {
        return scores(model, backend, null);
    }

    /** Sum log-probs of the first 3 held-out demo rows (96 tokens each); closes the backend. */
    private static double[] scores(Path model, Backend backend, SparsityPattern pruneOnLoad) throws IOException {
        List<int[]> rows = new ArrayList<>();
        for (String line : Files.readAllLines(TestModels.repoRoot().resolve("demo/input.jsonl")).subList(0, 3)) {
            JsonNode tokens = new ObjectMapper().readTree(line).get("tokens");
            int[] t = new int[Math.min(96, tokens.size())];
            for (int i = 0; i < t.length; i++) {
                t[i] = tokens.get(i).asInt();
            }
            rows.add(t);
        }
        try (backend; Engine engine = Engine.load(model, backend, pruneOnLoad)) {
            return engine.score(TokenBatch.of(rows.toArray(int[][]::new)), ScoreOptions.SUMS_ONLY).scores().stream()
                    .mapToDouble(SequenceScore::sumLogProb).toArray();
        }
    }

    /** A CPU backend that records which of its methods placed routed experts. */
    private static Backend recording(List<String> placed) {
        CpuBackend cpu = new CpuBackend(2);
        return (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[] {Backend.class},
                (proxy, method, args) -> {
                    if (method.getName().endsWith("xpertWeights") && !method.getName().equals("expertWeights")) {
                        placed.add(method.getName());
                    }
                    try {
                        return method.invoke(cpu, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
    }

    /** A tensor to write instead of a checkpoint's: float, I32 or U8 data and its shape. */
    private record Rewritten(Object data, long... shape) {
    }

    /** The 128:2:8 checkpoint with every tensor passed through {@code change} (null: left out). */
    private Path rewritten(String name, BiFunction<String, TensorRef, Object> change) throws IOException {
        Path out = Files.createDirectories(dir.resolve(name));
        try (Stream<Path> files = Files.list(magnitude)) {
            for (Path f : files.toList()) {
                Files.copy(f, out.resolve(f.getFileName()), StandardCopyOption.REPLACE_EXISTING);
            }
        }
        SafeTensorsWriter writer = new SafeTensorsWriter(Map.of("format", "pt"));
        try (Checkpoint c = Checkpoint.open(magnitude)) {
            for (String tensor : c.tensorNames()) {
                TensorRef t = c.get(tensor);
                Object changed = change.apply(tensor, t);
                if (changed == null) {
                    continue;
                }
                Rewritten r = changed instanceof Rewritten given ? given : new Rewritten(
                        t.dtype() == DType.I32 ? t.toInts() : t.dtype() == DType.U8 ? t.toBytes() : t.toFloats(),
                        t.shape());
                if (r.data() instanceof int[] ints) {
                    writer.addInts(tensor, ints, r.shape());
                } else if (r.data() instanceof byte[] bytes) {
                    writer.addBytes(tensor, bytes, r.shape());
                } else {
                    writer.add(tensor, DType.F32, (float[]) r.data(), r.shape());
                }
            }
        }
        writer.write(out.resolve(Checkpoint.SINGLE_FILE));
        return out;
    }

    private static void assertLoadFails(Path model, String tensor, String what) {
        ModelConfig config = ModelConfig.load(model);
        try (CpuBackend cpu = new CpuBackend(1); Checkpoint c = Checkpoint.open(model)) {
            ModelFormatException e = assertThrows(ModelFormatException.class, () -> ModelWeights.load(cpu, config, c));
            assertTrue(e.getMessage().contains(tensor) && e.getMessage().contains(what), e.getMessage());
        }
    }
}
