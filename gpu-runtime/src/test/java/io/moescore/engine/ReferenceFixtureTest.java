package io.moescore.engine;

import io.moescore.batch.ScoreBatch;
import io.moescore.batch.SequenceScore;
import io.moescore.batch.TokenBatch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moescore.TestModels;
import io.moescore.backend.cpu.CpuBackend;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The CPU engine against Hugging Face transformers' float32 outputs, made on the GPU machine by
 * gpu-runtime/src/test/python/make_hf_fixtures.py (and, for the demo model, by its training script):
 * every next-token log-prob within 2e-4, the same top-5 tokens after the last position.
 */
class ReferenceFixtureTest {
    static final double TOLERANCE = 2e-4;
    static CpuBackend backend;

    @BeforeAll
    static void start() {
        backend = new CpuBackend(2);
    }

    @AfterAll
    static void stop() {
        backend.close();
    }

    static Stream<Path> models() {
        return Stream.concat(TestModels.hfFixtures().stream(), Stream.of(TestModels.demoModel()));
    }

    /** Granite MoE, DeepSeek-V3, GLM-4.5 (issue 24): skipped, naming the command, until generated. */
    static Stream<Path> familyModels() {
        return TestModels.familyFixtures().stream();
    }

    record Reference(List<int[]> tokens, List<double[]> logProbs, List<int[]> top5) {
        static Reference read(Path model) throws IOException {
            JsonNode root = new ObjectMapper().readTree(model.resolve("reference.json").toFile());
            Reference r = new Reference(new ArrayList<>(), new ArrayList<>(), new ArrayList<>());
            for (JsonNode s : root.get("sequences")) {
                r.tokens.add(ints(s.get("tokens")));
                double[] lp = new double[s.get("next_token_logprobs").size()];
                for (int i = 0; i < lp.length; i++) {
                    lp[i] = s.get("next_token_logprobs").get(i).asDouble();
                }
                r.logProbs.add(lp);
                r.top5.add(ints(s.get("last_top5")));
            }
            return r;
        }

        static int[] ints(JsonNode array) {
            int[] out = new int[array.size()];
            for (int i = 0; i < out.length; i++) {
                out[i] = array.get(i).asInt();
            }
            return out;
        }
    }

    @ParameterizedTest
    @MethodSource("models")
    void logProbsAndTop5MatchTransformers(Path model) throws IOException {
        assertMatchesTransformers(model);
    }

    @ParameterizedTest
    @MethodSource("familyModels")
    void newFamilyLogProbsAndTop5MatchTransformers(Path model) throws IOException {
        TestModels.assumeFixture(model);
        assertMatchesTransformers(model);
    }

    @ParameterizedTest
    @MethodSource("familyModels")
    void newFamilySequenceScoresTheSameAloneAndInABatch(Path model) throws IOException {
        TestModels.assumeFixture(model);
        aSequenceScoresTheSameAloneAndInABatch(model);
    }

    /** Every next-token log-prob within {@link #TOLERANCE} of transformers', the same top-5 after the last token. */
    static void assertMatchesTransformers(Path model) throws IOException {
        Reference ref = Reference.read(model);
        try (Engine engine = Engine.load(model, backend)) {
            // all sequences packed into one batch: packing must not leak between sequences
            ScoreBatch batch = engine.score(TokenBatch.of(ref.tokens().toArray(int[][]::new)), new ScoreOptions(true, 5));
            double worst = 0;
            for (int s = 0; s < ref.tokens().size(); s++) {
                SequenceScore score = batch.scores().get(s);
                assertNull(score.error(), model + " sequence " + s);
                double[] expected = ref.logProbs().get(s);
                assertEquals(expected.length, score.tokenLogProbs().length);
                double sum = 0;
                for (int i = 0; i < expected.length; i++) {
                    double err = Math.abs(score.tokenLogProbs()[i] - expected[i]);
                    worst = Math.max(worst, err);
                    assertTrue(err <= TOLERANCE, model.getFileName() + " sequence " + s + " position " + i
                            + ": ours " + score.tokenLogProbs()[i] + ", transformers " + expected[i]);
                    sum += expected[i];
                }
                assertEquals(sum, score.sumLogProb(), TOLERANCE * Math.max(1, expected.length));
                assertArrayEquals(ref.top5().get(s), score.topTokens(), model.getFileName() + " sequence " + s + " top-5");
            }
            System.out.printf("%s: worst |log-prob error| %.2e over %d sequences%n", model.getFileName(), worst,
                    ref.tokens().size());
        }
    }

    @ParameterizedTest
    @MethodSource("models")
    void aSequenceScoresTheSameAloneAndInABatch(Path model) throws IOException {
        Reference ref = Reference.read(model);
        try (Engine engine = Engine.load(model, backend)) {
            ScoreOptions opts = new ScoreOptions(true, 5);
            ScoreBatch together = engine.score(TokenBatch.of(ref.tokens().toArray(int[][]::new)), opts);
            for (int s = 0; s < ref.tokens().size(); s++) {
                SequenceScore alone = engine.score(TokenBatch.of(ref.tokens().get(s)), opts).scores().get(0);
                SequenceScore packed = together.scores().get(s);
                assertArrayEquals(alone.tokenLogProbs(), packed.tokenLogProbs(), "sequence " + s);
                assertEquals(alone.sumLogProb(), packed.sumLogProb(), 0.0);
                assertArrayEquals(alone.topTokens(), packed.topTokens());
            }
        }
    }
}
