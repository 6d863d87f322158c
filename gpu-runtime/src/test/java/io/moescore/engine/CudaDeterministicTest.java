package io.moescore.engine;

import io.moescore.GpuTest;
import io.moescore.batch.ScoreBatch;
import io.moescore.batch.SequenceScore;
import io.moescore.batch.TokenBatch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.moescore.TestModels;
import io.moescore.backend.Precision;
import io.moescore.backend.cuda.CudaBackend;
import io.moescore.backend.cuda.CudaOptions;
import io.moescore.sparse.SparsityPattern;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * Deterministic mode on the GPU: the same sequence scored alone, packed with the others, and in a shuffled mix with
 * random filler sequences gives bit-identical per-token log-probs, sums and top-k, for dense and 2:4 experts, at
 * both precisions. The models include top-3 routing (OLMoE, Qwen2-MoE fixtures), where the default atomicAdd
 * combine of three or more experts rounds in whatever order the adds land. 2:4 runs on the models whose expert
 * widths are multiples of 32 (the format's requirement): OLMoE, Qwen2-MoE and the demo model.
 */
@GpuTest
class CudaDeterministicTest {

    static Stream<Path> models() {
        return Stream.concat(TestModels.hfFixtures().stream(), Stream.of(TestModels.demoModel()));
    }

    @Test
    void scoresAreBitIdenticalWhateverTheBatch() throws IOException {
        List<String> differing = new ArrayList<>();
        for (Precision precision : Precision.values()) {
            CudaBackend backend = new CudaBackend(CudaOptions.device(0).withPrecision(precision)
                    .withDeterministic(true));
            for (Path model : models().toList()) {
                for (boolean sparse : new boolean[] {false, true}) {
                    if (sparse && !expertsPackTwoFour(model)) {
                        continue;
                    }
                    int diffs = mixes(model, backend, sparse).differ();
                    System.out.printf("deterministic %s %s%s: %d sequences differ between batch mixes%n",
                            precision.userName(), model.getFileName(), sparse ? " (2:4)" : "", diffs);
                    if (diffs > 0) {
                        differing.add(precision.userName() + " " + model.getFileName() + (sparse ? " 2:4" : ""));
                    }
                }
            }
        }
        assertTrue(differing.isEmpty(), "not batch-invariant: " + differing);
    }

    private static boolean expertsPackTwoFour(Path model) throws IOException {
        io.moescore.model.ModelConfig config = io.moescore.model.ModelConfig.load(model);
        return config.hiddenSize() % 32 == 0 && config.expertFfnSize() % 32 == 0;
    }

    /**
     * The default mode (atomic combine, kernels tuned per shape) may change a sequence's bits with the batch, not its
     * values: every per-token log-prob alone, packed and in the mix within twice CudaReferenceFixtureTest's bf16
     * tolerance of each other (each is within that tolerance of transformers there). A batching fault (a sequence
     * reading another's rows, a filler leaking in) moves log-probs by nats. How many sequences change bits is
     * printed, for the record.
     */
    @Test
    void defaultModeDiffersOnlyByRounding() throws IOException {
        CudaBackend backend = new CudaBackend(CudaOptions.device(0));
        double tolerance = 2 * CudaReferenceFixtureTest.BF16_TOLERANCE;
        List<String> far = new ArrayList<>();
        for (Path model : models().toList()) {
            Mixes m = mixes(model, backend, false);
            System.out.printf("default bf16 %s: %d sequences differ in bits between batch mixes, worst |difference| "
                    + "%.2e (%s)%n", model.getFileName(), m.differ(), m.worst(), m.worstAt());
            if (!(m.worst() <= tolerance)) {
                far.add(model.getFileName() + ": " + m.worst() + " at " + m.worstAt());
            }
        }
        assertTrue(far.isEmpty(), "default mode: log-probs differ between batch mixes by more than " + tolerance
                + ": " + far);
    }

    /**
     * How the reference sequences' scores differ between batch mixes: sequences not bit-identical, and the largest
     * per-token log-prob difference with where it is.
     */
    private record Mixes(int differ, double worst, String worstAt) {
    }

    /** Scores every reference sequence alone, packed with the others, and shuffled among random fillers. */
    private static Mixes mixes(Path model, CudaBackend backend, boolean sparse) throws IOException {
        ReferenceFixtureTest.Reference ref = ReferenceFixtureTest.Reference.read(model);
        int[][] sequences = ref.tokens().toArray(int[][]::new);
        ScoreOptions options = new ScoreOptions(true, 5);
        try (Engine engine = Engine.load(model, backend, sparse ? SparsityPattern.TWO_FOUR : null)) {
            int vocab = engine.config().vocabSize();
            ScoreBatch packed = engine.score(TokenBatch.of(sequences), options);
            // reversed, each followed by a random filler of random length
            Random random = new Random(sequences.length);
            int[][] mixed = new int[2 * sequences.length][];
            for (int s = 0; s < sequences.length; s++) {
                mixed[2 * s] = sequences[sequences.length - 1 - s];
                mixed[2 * s + 1] = random.ints(2 + random.nextInt(60), 0, vocab).toArray();
            }
            ScoreBatch shuffled = engine.score(TokenBatch.of(mixed), options);
            int differ = 0;
            double worst = 0;
            String worstAt = "none";
            for (int s = 0; s < sequences.length; s++) {
                SequenceScore alone = engine.score(TokenBatch.of(sequences[s]), options).scores().get(0);
                SequenceScore inPack = packed.scores().get(s);
                SequenceScore inMix = shuffled.scores().get(2 * (sequences.length - 1 - s));
                assertNull(alone.error());
                assertEquals(sequences[s].length - 1, alone.tokenLogProbs().length);
                boolean same = bitsEqual(alone, inPack) && bitsEqual(alone, inMix);
                differ += same ? 0 : 1;
                for (int i = 0; i < alone.tokenLogProbs().length; i++) {
                    float a = alone.tokenLogProbs()[i];
                    double d = Math.max(Math.abs(a - inPack.tokenLogProbs()[i]), Math.abs(a - inMix.tokenLogProbs()[i]));
                    if (!(d <= worst)) {
                        worst = Double.isNaN(d) ? Double.POSITIVE_INFINITY : d;
                        worstAt = "sequence " + s + " token " + i + ": alone " + a + ", packed "
                                + inPack.tokenLogProbs()[i] + ", mixed " + inMix.tokenLogProbs()[i];
                    }
                }
            }
            return new Mixes(differ, worst, worstAt);
        }
    }

    private static boolean bitsEqual(SequenceScore a, SequenceScore b) {
        return Arrays.equals(bits(a.tokenLogProbs()), bits(b.tokenLogProbs()))
                && Double.doubleToLongBits(a.sumLogProb()) == Double.doubleToLongBits(b.sumLogProb())
                && Arrays.equals(a.topTokens(), b.topTokens());
    }

    private static int[] bits(float[] values) {
        int[] bits = new int[values.length];
        for (int i = 0; i < values.length; i++) {
            bits[i] = Float.floatToIntBits(values[i]);
        }
        return bits;
    }
}
