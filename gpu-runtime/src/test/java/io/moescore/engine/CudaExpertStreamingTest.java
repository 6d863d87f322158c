package io.moescore.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.moescore.GpuTest;
import io.moescore.TestModels;
import io.moescore.backend.Precision;
import io.moescore.backend.cuda.CudaBackend;
import io.moescore.backend.cuda.CudaOptions;
import io.moescore.batch.ScoreBatch;
import io.moescore.batch.TokenBatch;
import io.moescore.model.ModelConfig;
import io.moescore.sparse.SparsityPattern;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * {@link ExpertStreamingTest} on the GPU: routed experts streamed under {@code --device-memory} (uploaded and
 * pre-tiled per forward into staging slots, a slot freed once its layer's experts are queued) score bit-identically
 * to the resident engine in deterministic mode, dense and 2:4, over several forwards whose slots reuse freed memory.
 * What it guards: an upload or pre-tiling that races the kernels reading a slot, or a slot freed before them.
 */
@GpuTest
class CudaExpertStreamingTest {
    @Test
    void demoModelStreamingThreeOfFourLayersScoresBitIdenticallyOnTheGpu() {
        assertStreamsBitIdentically(LoadOptions.DEFAULT, 40L);
    }

    @Test
    void twoFourExpertsStreamBitIdenticallyOnTheGpu() {
        assertStreamsBitIdentically(LoadOptions.DEFAULT.withPruneExperts(SparsityPattern.TWO_FOUR), 41L);
    }

    private static void assertStreamsBitIdentically(LoadOptions options, long seed) {
        Path model = TestModels.demoModel();
        ModelConfig c = ModelConfig.load(model);
        try (CudaBackend gpu = new CudaBackend(CudaOptions.device(0).withPrecision(Precision.BF16)
                .withDeterministic(true))) {
            MemoryPlan plan = Engine.memoryPlan(c, model, gpu);
            long cap = ExpertStreamingTest.cap(plan, c, 3);  // one layer resident, two slots: three layers stream
            try (Engine resident = Engine.load(model, gpu, options);
                 Engine streamed = Engine.load(model, gpu, options.withDeviceMemory(cap))) {
                assertEquals(3, streamed.residency().streamedLayers(), streamed.residency().describe());
                for (int round = 0; round < 3; round++) {  // later forwards' slots reuse the memory freed before
                    TokenBatch tokens = ExpertStreamingTest.batch(c, seed + round, 17 + round, 5, 60, 33, 1, 48);
                    ScoreBatch want = resident.score(tokens, ExpertStreamingTest.OPTIONS);
                    ScoreBatch got = streamed.score(tokens, ExpertStreamingTest.OPTIONS);
                    ExpertStreamingTest.assertBitIdentical(want, got);
                    for (int l = 0; l < c.numLayers(); l++) {
                        assertArrayEquals(want.expertLoad().layer(l), got.expertLoad().layer(l),
                                "round " + round + ", layer " + l + "'s routing");
                    }
                    assertEquals(3L * (round + 1), streamed.expertStore().uploads(),
                            "one upload per streamed layer per forward");
                }
                assertTrue(streamed.expertStore().uploadedBytes() > 0);
            }
        }
    }
}
