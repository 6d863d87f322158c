package io.moescore.sparsify;

import io.moescore.sparse.Sparse24;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moescore.TestModels;
import io.moescore.model.Checkpoint;
import io.moescore.model.ModelConfig;
import java.nio.file.Path;
import java.util.List;
import java.util.SortedMap;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code sparsify --method sparsegpt} on the demo model, calibrated on a few sequences so some experts go unreached. */
class SparsifierSparseGptTest {
    private static final String WEIGHT = "model.layers.%d.block_sparse_moe.experts.%d.w2.weight";

    @TempDir
    Path dir;

    @Test
    void prunesCalibratedExpertsBySparseGptAndCountsTheRestPerLayer() throws Exception {
        Path model = TestModels.demoModel();
        List<int[]> calibration = firstCalibrationRows(2);
        ModelConfig config = ModelConfig.load(model);
        long[][] routed = new long[config.numLayers()][config.numExperts()];
        ExpertCalibration.run(model, calibration,
                (layer, expert, x, rows, hidden, swiglu, ffn) -> routed[layer][expert] += rows.length);
        SortedMap<Integer, Integer> unreached = new TreeMap<>();
        for (int l = 0; l < config.numLayers(); l++) {
            for (int e = 0; e < config.numExperts(); e++) {
                if (routed[l][e] == 0) {
                    unreached.merge(l, 3, Integer::sum);   // gate, up and down
                }
            }
        }
        assertFalse(unreached.isEmpty(), "2 calibration rows leave some expert unreached");

        Sparsifier.Result oneShot = Sparsifier.sparsify(model, dir.resolve("one-shot"), "sparsegpt", calibration);
        Sparsifier.Result sequential = Sparsifier.sparsify(model, dir.resolve("sequential"), "sparsegpt", true, calibration);
        assertEquals(unreached, oneShot.fallbacksPerLayer());
        JsonNode manifest = new ObjectMapper().readTree(dir.resolve("one-shot/sparsity.json").toFile());
        assertEquals("sparsegpt", manifest.get("method").asText());
        assertEquals(unreached.values().stream().mapToInt(Integer::intValue).sum(),
                manifest.get("projections_without_calibration_fell_back_to_magnitude").asInt());

        int reachedInLayer0 = firstReached(routed[0]);
        int reachedInLayer3 = firstReached(routed[3]);
        try (Checkpoint dense = Checkpoint.open(model)) {
            float[] w = dense.get(WEIGHT.formatted(0, reachedInLayer0)).toFloats();
            float[] magnitude = Sparse24.pruneMagnitude(w, 192, 384);
            float[] first = unpacked(dir.resolve("one-shot"), WEIGHT.formatted(0, reachedInLayer0));
            assertFalse(java.util.Arrays.equals(magnitude, first), "SparseGPT updates the weights it keeps");
            assertArrayEquals(first, unpacked(dir.resolve("sequential"), WEIGHT.formatted(0, reachedInLayer0)),
                    "the first layer sees the same (dense) inputs either way");
            assertFalse(java.util.Arrays.equals(unpacked(dir.resolve("one-shot"), WEIGHT.formatted(3, reachedInLayer3)),
                            unpacked(dir.resolve("sequential"), WEIGHT.formatted(3, reachedInLayer3))),
                    "a later layer sees the pruned layers before it when sequential");
        }
        assertEquals(oneShot.tensorsPruned(), sequential.tensorsPruned());
    }

    /**
     * --reconstruct-steps: the reached experts' kept weights move (masks unchanged, groups still 2 of 4), unreached
     * ones stay at magnitude, sparsity.json records the settings, and the same run gives the same checkpoint.
     */
    @Test
    void expertReconstructionTunesTheKeptWeightsOfReachedExperts() throws Exception {
        Path model = TestModels.demoModel();
        List<int[]> calibration = firstCalibrationRows(2);
        ExpertReconstruction.Options options = new ExpertReconstruction.Options(5, 1e-3, 64, 3);
        Sparsifier.Result plainResult = Sparsifier.sparsify(model, dir.resolve("plain"), "sparsegpt", true, calibration);
        Sparsifier.Result tuned = Sparsifier.sparsify(model, dir.resolve("tuned"), "sparsegpt", true, options,
                calibration);
        Sparsifier.sparsify(model, dir.resolve("again"), "sparsegpt", true, options, calibration);
        long[] routed = new long[ModelConfig.load(model).numExperts()];
        ExpertCalibration.run(model, calibration, (layer, expert, x, rows, hidden, swiglu, ffn) -> {
            if (layer == 0) {
                routed[expert] += rows.length;
            }
        });
        String name = WEIGHT.formatted(0, firstReached(routed));
        float[] plain = unpacked(dir.resolve("plain"), name);
        float[] reconstructed = unpacked(dir.resolve("tuned"), name);
        assertFalse(java.util.Arrays.equals(plain, reconstructed), "reconstruction moves the kept weights");
        for (int i = 0; i < plain.length; i++) {
            assertEquals(plain[i] == 0f, reconstructed[i] == 0f, name + " weight " + i + ": the mask stays");
        }
        assertArrayEquals(reconstructed, unpacked(dir.resolve("again"), name), "deterministic");
        JsonNode manifest = new ObjectMapper().readTree(dir.resolve("tuned/sparsity.json").toFile());
        assertEquals(5, manifest.get("expert_reconstruction").get("steps").asInt());
        assertEquals(plainResult.fallbacksPerLayer(), tuned.fallbacksPerLayer(), "unreached experts: magnitude");
        assertThrows(IllegalArgumentException.class, () -> Sparsifier.sparsify(model, dir.resolve("w"), "wanda", false,
                options, calibration));
    }

    @Test
    void sparseGptNeedsCalibrationAndSequentialNeedsSparseGpt() {
        Path model = TestModels.demoModel();
        assertThrows(IllegalArgumentException.class,
                () -> Sparsifier.sparsify(model, dir.resolve("a"), "sparsegpt", List.of()));
        assertThrows(IllegalArgumentException.class,
                () -> Sparsifier.sparsify(model, dir.resolve("b"), "wanda", true, List.of(new int[] {1, 2, 3})));
    }

    private static int firstReached(long[] routedPerExpert) {
        for (int e = 0; e < routedPerExpert.length; e++) {
            if (routedPerExpert[e] > 0) {
                return e;
            }
        }
        throw new AssertionError("no expert reached");
    }

    private static float[] unpacked(Path sparseModel, String name) {
        try (Checkpoint c = Checkpoint.open(sparseModel)) {
            float[] dense = Sparse24.decompress(new Sparse24.Packed(192, 384,
                    c.get(name + ".sp24_values").toFloats(), c.get(name + ".sp24_meta").toInts()));
            for (int g = 0; g < dense.length; g += 4) {
                int zeros = 0;
                for (int j = 0; j < 4; j++) {
                    zeros += dense[g + j] == 0f ? 1 : 0;
                }
                assertTrue(zeros >= 2, name + " group " + g / 4 + " keeps at most 2 of 4");
            }
            return dense;
        }
    }

    private static List<int[]> firstCalibrationRows(int n) throws java.io.IOException {
        Path demo = TestModels.demoModel().getParent();
        return CalibrationRows.read(demo.resolve("calibration.jsonl")).subList(0, n);
    }
}
