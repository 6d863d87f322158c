package io.moescore.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.moescore.TestModels;
import io.moescore.backend.cpu.CpuBackend;
import io.moescore.batch.ScoreBatch;
import io.moescore.batch.SequenceScore;
import io.moescore.batch.TokenBatch;
import io.moescore.model.Checkpoint;
import io.moescore.model.ModelConfig;
import java.nio.file.Path;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Routed experts streamed from host memory under {@code --device-memory} (issue 30, part 3): scores bit-identical
 * to the fully resident engine's on the CPU backend, one upload per streamed layer per forward of the plan's bytes,
 * batches bounded by the cap, and a cap too small refused with its numbers.
 */
class ExpertStreamingTest {
    static final ScoreOptions OPTIONS = new ScoreOptions(true, 5);

    /** Random sequences of the given lengths (the seed is printed). */
    static TokenBatch batch(ModelConfig c, long seed, int... lengths) {
        System.out.println("ExpertStreamingTest seed " + seed);
        Random random = new Random(seed);
        int[][] sequences = new int[lengths.length][];
        for (int s = 0; s < lengths.length; s++) {
            sequences[s] = random.ints(lengths[s], 0, c.vocabSize()).toArray();
        }
        return TokenBatch.of(sequences);
    }

    static void assertBitIdentical(ScoreBatch want, ScoreBatch got) {
        assertEquals(want.scores().size(), got.scores().size());
        for (int s = 0; s < want.scores().size(); s++) {
            SequenceScore w = want.scores().get(s);
            SequenceScore g = got.scores().get(s);
            assertTrue(w.ok() && g.ok(), "sequence " + s + ": " + w.error() + " / " + g.error());
            assertEquals(Double.doubleToRawLongBits(w.sumLogProb()), Double.doubleToRawLongBits(g.sumLogProb()),
                    "sequence " + s + "'s sum " + w.sumLogProb() + " vs " + g.sumLogProb());
            assertArrayEquals(w.tokenLogProbs(), g.tokenLogProbs(), "sequence " + s + "'s token log-probs");
            assertArrayEquals(w.topTokens(), g.topTokens(), "sequence " + s + "'s top tokens");
        }
    }

    /** The demo model's plan on the CPU backend. */
    static MemoryPlan demoPlan(CpuBackend backend) {
        Path model = TestModels.demoModel();
        return Engine.memoryPlan(ModelConfig.load(model), model, backend);
    }

    /** A cap leaving room for {@code layers} MoE layers' experts beside the non-expert weights and one sequence. */
    static long cap(MemoryPlan plan, ModelConfig c, int layers) {
        return plan.nonExpertBytes() + layers * (plan.expertBytes() / 4) + (long) c.maxPositions() * plan.bytesPerToken();
    }

    @Test
    void demoModelStreamingThreeOfFourLayersScoresBitIdenticallyWithOneUploadPerStreamedLayer() {
        Path model = TestModels.demoModel();
        ModelConfig c = ModelConfig.load(model);
        TokenBatch tokens = batch(c, 30L, 17, 5, 60, 33, 1, 48);
        try (CpuBackend backend = new CpuBackend(2)) {
            assertDemoStreamsBitIdentically(backend, model, c, tokens);
        }
    }

    private static void assertDemoStreamsBitIdentically(CpuBackend backend, Path model, ModelConfig c,
                                                        TokenBatch tokens) {
        MemoryPlan plan = demoPlan(backend);
        long layerBytes = plan.expertBytes() / 4;
        // room for three layers' experts (one resident + two slots), not four: three of the four layers stream
        try (Engine resident = Engine.load(model, backend);
             Engine streamed = Engine.load(model, backend, LoadOptions.DEFAULT.withDeviceMemory(cap(plan, c, 3)))) {
            ExpertResidency r = streamed.residency();
            assertEquals(3, r.streamedLayers(), r.describe());
            assertFalse(r.streams(0), "the first MoE layer stays resident");
            assertTrue(r.streams(1) && r.streams(2) && r.streams(3), r.describe());
            assertEquals(c.maxPositions(), r.largestBatchTokens(), "the cap leaves one sequence's activations");
            assertEquals(0, resident.residency().streamedLayers());

            ScoreBatch want = resident.score(tokens, OPTIONS);
            ScoreBatch got = streamed.score(tokens, OPTIONS);
            assertEquals(0, got.memorySplits());
            assertBitIdentical(want, got);
            for (int l = 0; l < c.numLayers(); l++) {
                assertArrayEquals(want.expertLoad().layer(l), got.expertLoad().layer(l), "layer " + l + "'s routing");
            }
            assertEquals(3, streamed.expertStore().uploads(), "one upload per streamed layer in one forward");
            assertEquals(3 * layerBytes, streamed.expertStore().uploadedBytes());
            assertEquals(r.streamedBytesPerForward(), streamed.expertStore().uploadedBytes());
            assertEquals(0, resident.expertStore().uploads());

            assertBitIdentical(want, streamed.score(tokens, OPTIONS));
            assertEquals(6, streamed.expertStore().uploads(), "again for the second forward");
        }
    }

    @Test
    void aBatchAboveTheCapsTokensIsSplitAndScoresTheSame() {
        Path model = TestModels.demoModel();
        ModelConfig c = ModelConfig.load(model);
        TokenBatch tokens = batch(c, 31L, 400, 400, 400);  // 1200 tokens; the cap leaves 1024
        try (CpuBackend backend = new CpuBackend(2);
             Engine resident = Engine.load(model, backend);
             Engine streamed = Engine.load(model, backend, LoadOptions.DEFAULT.withDeviceMemory(
                     cap(demoPlan(backend), c, 3)))) {
            ScoreBatch want = resident.score(tokens, OPTIONS);
            ScoreBatch got = streamed.score(tokens, OPTIONS);
            assertEquals(0, want.memorySplits());
            assertEquals(1, got.memorySplits(), "1200 tokens split into 400 and 800");
            assertBitIdentical(want, got);
            assertEquals(3 * 2, streamed.expertStore().uploads(), "two forwards, three streamed layers each");
        }
    }

    @Test
    void aCapBelowTheNonExpertWeightsTwoSlotsAndOneSequenceIsRefusedWithTheNumbers() {
        Path model = TestModels.demoModel();
        ModelConfig c = ModelConfig.load(model);
        try (CpuBackend backend = new CpuBackend(2)) {
            assertCapsRefusedOrStreamed(backend, model, c);
        }
    }

    private static void assertCapsRefusedOrStreamed(CpuBackend backend, Path model, ModelConfig c) {
        MemoryPlan plan = demoPlan(backend);
        long smallest = cap(plan, c, 2);
        UnsupportedModelException e = assertThrows(UnsupportedModelException.class,
                () -> Engine.load(model, backend, LoadOptions.DEFAULT.withDeviceMemory(smallest - 1)));
        String m = e.getMessage();
        assertTrue(m.contains("--device-memory " + (smallest - 1) + " bytes is too small"), m);
        assertTrue(m.contains("(" + plan.nonExpertBytes() + " bytes) of non-expert weights"), m);
        assertTrue(m.contains("2 staging slots of " + plan.expertBytes() / 4 + " bytes"), m);
        assertTrue(m.contains("one sequence of " + c.maxPositions() + " tokens"), m);
        assertTrue(m.contains("= " + smallest + " bytes, more than the " + (smallest - 1) + " bytes"), m);
        // the smallest cap that fits streams every MoE layer
        try (Engine all = Engine.load(model, backend, LoadOptions.DEFAULT.withDeviceMemory(smallest))) {
            assertEquals(4, all.residency().streamedLayers(), all.residency().describe());
        }
        // one that holds every layer streams none
        try (Engine none = Engine.load(model, backend, LoadOptions.DEFAULT.withDeviceMemory(cap(plan, c, 4)))) {
            assertEquals(0, none.residency().streamedLayers(), none.residency().describe());
            assertTrue(none.residency().capped());
        }
    }

    /** Experts pruned to 2:4 on load stream as the packed arrays the loader made (HostExperts.sparse). */
    @Test
    void twoFourPackedExpertsStreamBitIdentically() {
        Path model = TestModels.demoModel();
        ModelConfig c = ModelConfig.load(model);
        TokenBatch tokens = batch(c, 33L, 12, 40, 7);
        LoadOptions pruned = LoadOptions.DEFAULT.withPruneExperts(io.moescore.sparse.SparsityPattern.TWO_FOUR);
        try (CpuBackend backend = new CpuBackend(2);
             Engine resident = Engine.load(model, backend, pruned);
             Engine streamed = Engine.load(model, backend, pruned.withDeviceMemory(cap(demoPlan(backend), c, 3)))) {
            assertEquals(3, streamed.residency().streamedLayers());
            assertBitIdentical(resident.score(tokens, OPTIONS), streamed.score(tokens, OPTIONS));
            assertEquals(3, streamed.expertStore().uploads());
        }
    }

    static Stream<Path> fixtures() {
        Path dir = TestModels.repoRoot().resolve("gpu-runtime/src/test/resources/hf");
        return Stream.of(dir.resolve("mixtral-bf16"), dir.resolve("olmoe-fp32-fused"));
    }

    /**
     * A fixture of two MoE layers: with two staging slots, a cap never makes streaming them cheaper than keeping
     * them (two slots hold as much as two layers), so the residency is forced: both layers stream.
     */
    @ParameterizedTest
    @MethodSource("fixtures")
    void everyLayerStreamedOnAnHfFixtureScoresBitIdentically(Path model) {
        ModelConfig c = ModelConfig.load(model);
        boolean[] all = c.moeLayers().clone();
        assertTrue(all.length == 2 && all[0] && all[1], model + " has two MoE layers");
        TokenBatch tokens = batch(c, 32L, 9, 31, 2, 25);
        try (CpuBackend backend = new CpuBackend(2)) {
            MemoryPlan plan = Engine.memoryPlan(c, model, backend);
            ExpertResidency forced = new ExpertResidency(plan, true, all, plan.expertBytes() / 2, 2, Long.MAX_VALUE);
            assertForcedStreamingBitIdentical(backend, model, c, tokens, plan, forced);
        }
    }

    private static void assertForcedStreamingBitIdentical(CpuBackend backend, Path model, ModelConfig c,
                                                          TokenBatch tokens, MemoryPlan plan,
                                                          ExpertResidency forced) {
        try (Engine resident = Engine.load(model, backend);
             Checkpoint checkpoint = Checkpoint.open(model);
             Engine streamed = new Engine(c, backend,
                     ModelWeights.load(backend, c, checkpoint, LoadOptions.DEFAULT, forced))) {
            assertBitIdentical(resident.score(tokens, OPTIONS), streamed.score(tokens, OPTIONS));
            assertEquals(2, streamed.expertStore().uploads());
            assertEquals(plan.expertBytes(), streamed.expertStore().uploadedBytes(), "both layers' experts, once");
        }
    }
}
