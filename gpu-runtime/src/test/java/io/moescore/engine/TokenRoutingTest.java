package io.moescore.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.moescore.TestModels;
import io.moescore.backend.cpu.CpuBackend;
import io.moescore.batch.ScoreBatch;
import io.moescore.batch.TokenBatch;
import io.moescore.batch.TokenRouting;
import io.moescore.routing.HostExpertRouting;
import java.util.Random;
import java.util.SortedMap;
import org.junit.jupiter.api.Test;

/**
 * {@link ScoreOptions#withTokenRouting}: the engine returns each token's chosen experts and gates per MoE layer,
 * adding up to its expert load, without changing a score; nothing when not asked.
 */
class TokenRoutingTest {
    @Test
    void choicesInvertTheExpertLists() {
        long seed = System.nanoTime();
        System.out.println("TokenRoutingTest seed " + seed);
        Random random = new Random(seed);
        int experts = 7;
        int rows = 1 + random.nextInt(40);
        int[][] chosen = new int[rows][];
        float[][] gates = new float[rows][];
        for (int t = 0; t < rows; t++) {  // a varying count per row, distinct ascending experts
            chosen[t] = random.ints(0, experts).distinct().limit(random.nextInt(4)).sorted().toArray();
            gates[t] = new float[chosen[t].length];
            for (int j = 0; j < gates[t].length; j++) {
                gates[t][j] = random.nextFloat();
            }
        }
        TokenRouting.Choices c = HostExpertRouting.fromChoices(experts, chosen, gates).choices(rows);
        assertEquals(rows, c.tokens());
        for (int t = 0; t < rows; t++) {
            assertArrayEquals(chosen[t], java.util.Arrays.copyOfRange(c.experts(), c.offsets()[t], c.offsets()[t + 1]),
                    "row " + t + " (seed " + seed + ")");
            assertArrayEquals(gates[t], java.util.Arrays.copyOfRange(c.gates(), c.offsets()[t], c.offsets()[t + 1]),
                    "row " + t + " (seed " + seed + ")");
        }
        TokenRouting.Choices tail = c.slice(rows / 2, rows);
        assertEquals(rows - rows / 2, tail.tokens());
        assertEquals(0, tail.offsets()[0]);
    }

    @Test
    void demoModelRoutingAddsUpToTheLoadAndLeavesScoresAlone() {
        try (CpuBackend cpu = new CpuBackend(1); Engine engine = Engine.load(TestModels.demoModel(), cpu)) {
            int vocab = engine.config().vocabSize();
            // sequence 1 is refused (a token outside the vocabulary): it gets no routing
            TokenBatch batch = TokenBatch.of(new int[] {1, 5, 9, 200, 7}, new int[] {3, vocab}, new int[] {42, 17, 8});
            ScoreBatch plain = engine.score(batch, ScoreOptions.SUMS_ONLY);
            ScoreBatch traced = engine.score(batch, ScoreOptions.SUMS_ONLY.withTokenRouting(true));
            assertNull(plain.tokenRouting(), "not asked: nothing copied");
            for (int s = 0; s < 3; s++) {
                assertEquals(plain.scores().get(s).sumLogProb(), traced.scores().get(s).sumLogProb(), "sequence " + s);
                assertEquals(plain.scores().get(s).error(), traced.scores().get(s).error(), "sequence " + s);
            }
            TokenRouting routing = traced.tokenRouting();
            assertEquals(java.util.Set.of(0, 2), routing.sequences());
            int layers = engine.config().numLayers();
            long[][] counts = new long[layers][engine.config().numExperts()];
            for (int s : routing.sequences()) {
                SortedMap<Integer, TokenRouting.Choices> bySequence = routing.layers(s);
                assertEquals(layers, bySequence.size(), "the demo model's layers are all MoE");
                bySequence.forEach((l, c) -> {
                    assertEquals(batch.length(s), c.tokens(), "sequence " + s + ", layer " + l);
                    for (int t = 0; t < c.tokens(); t++) {
                        assertEquals(engine.config().topK(), c.offsets()[t + 1] - c.offsets()[t]);
                    }
                    for (int e : c.experts()) {
                        counts[l][e]++;
                    }
                    for (float g : c.gates()) {
                        assertTrue(g > 0 && g <= 1, "a softmax gate: " + g);
                    }
                });
            }
            for (int l = 0; l < layers; l++) {
                assertArrayEquals(traced.expertLoad().layer(l), counts[l], "layer " + l);
            }
        }
    }
}
