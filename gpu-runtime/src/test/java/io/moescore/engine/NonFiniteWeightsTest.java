package io.moescore.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.moescore.TestModels;
import io.moescore.backend.cpu.CpuBackend;
import io.moescore.model.ModelFormatException;
import io.moescore.model.NonFiniteWeightException;
import io.moescore.model.WeightEdits;
import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * NaN or infinite weights fail {@link Engine#load} by default, naming the tensor and its first bad index (a
 * ModelFormatException: exit 2 in every front end); {@link LoadOptions#allowNonfinite} loads them. Broken copies
 * of the demo model (bf16, sharded).
 */
class NonFiniteWeightsTest {
    static CpuBackend backend;

    @TempDir
    Path tmp;

    @BeforeAll
    static void start() {
        backend = new CpuBackend(2);
    }

    @AfterAll
    static void stop() {
        backend.close();
    }

    Path demoCopy() throws IOException {
        return TestModels.demoCopy(tmp.resolve("model"));
    }

    @Test
    void nanInAnExpertNamesTheTensorAndItsFirstIndex() throws IOException {
        Path model = demoCopy();
        String expert = "model.layers.2.block_sparse_moe.experts.3.w2.weight";  // [192, 384]
        WeightEdits.set(model, expert, 9L * 384 + 1, Float.NaN);
        WeightEdits.set(model, expert, 5L * 384 + 7, Float.NaN);
        NonFiniteWeightException e = assertThrows(NonFiniteWeightException.class, () -> Engine.load(model, backend));
        assertTrue(e instanceof ModelFormatException);
        assertEquals(expert, e.tensor());
        assertArrayEquals(new long[] {5, 7}, e.index());
        assertTrue(e.getMessage().contains(expert) && e.getMessage().contains("[5, 7]")
                && e.getMessage().contains("NaN") && e.getMessage().contains("allowNonfinite"), e.getMessage());
    }

    @Test
    void infinityInTheRouterOrLmHeadIsNamed() throws IOException {
        Path model = demoCopy();
        WeightEdits.set(model, "model.layers.1.block_sparse_moe.gate.weight", 3L * 192 + 100, Float.POSITIVE_INFINITY);
        NonFiniteWeightException e = assertThrows(NonFiniteWeightException.class, () -> Engine.load(model, backend));
        assertEquals("model.layers.1.block_sparse_moe.gate.weight", e.tensor());
        assertArrayEquals(new long[] {3, 100}, e.index());
        assertTrue(e.getMessage().contains("Infinity"), e.getMessage());

        Path other = TestModels.demoCopy(tmp.resolve("lm"));
        WeightEdits.set(other, "lm_head.weight", 77L * 192, Float.NEGATIVE_INFINITY);
        e = assertThrows(NonFiniteWeightException.class, () -> Engine.load(other, backend));
        assertEquals("lm_head.weight", e.tensor());
        assertArrayEquals(new long[] {77, 0}, e.index());
    }

    @Test
    void allowNonfiniteLoadsThem() throws IOException {
        Path model = demoCopy();
        WeightEdits.set(model, "model.layers.2.block_sparse_moe.experts.3.w2.weight", 11, Float.NaN);
        try (Engine engine = Engine.load(model, backend, LoadOptions.DEFAULT.withAllowNonfinite(true))) {
            assertEquals(4, engine.config().numLayers());
        }
    }

    @Test
    void pruningOnLoadChecksToo() throws IOException {
        Path model = demoCopy();
        WeightEdits.set(model, "model.layers.0.block_sparse_moe.experts.0.w1.weight", 2L * 192 + 3, Float.NaN);
        NonFiniteWeightException e = assertThrows(NonFiniteWeightException.class,
                () -> Engine.load(model, backend, io.moescore.sparse.SparsityPattern.TWO_FOUR));
        assertArrayEquals(new long[] {2, 3}, e.index());
    }
}
