package io.moescore.engine;

import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.moescore.GpuTest;
import io.moescore.TestModels;
import io.moescore.backend.Backend;
import io.moescore.backend.Precision;
import io.moescore.backend.cpu.CpuBackend;
import io.moescore.backend.cuda.CudaBackend;
import io.moescore.backend.cuda.CudaOptions;
import io.moescore.batch.ExpertLoad;
import io.moescore.batch.ScoreBatch;
import io.moescore.batch.SequenceScore;
import io.moescore.batch.TokenBatch;
import io.moescore.routing.RoutingSpec;
import io.moescore.sparse.SparsityPattern;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Whole models scored with each --routing variant on the GPU against the CPU engine with the same variant: the
 * Mixtral (renormalised top-2) and OLMoE (raw top-3) fixtures and the trained demo model, split-bf16 (the GPU
 * precision closest to the CPU's fp32, so that few router decisions flip on rounding). Bounds, as the CUDA-vs-CPU
 * model tests set them (CudaReferenceFixtureTest, CudaVectorSparseModelTest): at least {@value #WITHIN_SHARE} of all
 * tokens within {@value #TOLERANCE} of the CPU, none NaN; and the token-expert pairs routed (the engine's expert
 * load, which on the GPU comes from the device's per-token counts) within 2% of the CPU's. So that the test can
 * fail, every variant must move the CPU's scores away from the model's own router by more than the GPU differs
 * from the CPU, summed over the models. Deterministic mode (per-token counts in the ordered combine) and 2:4
 * experts (pruned on load) run one threshold gate and top-p where the expert widths pack.
 */
@GpuTest
class CudaRoutingVariantsModelTest {
    static final double TOLERANCE = 2e-2;
    static final double WITHIN_SHARE = 0.98;

    @TempDir
    static Path dir;

    static List<Path> models() {
        Path fixtures = TestModels.repoRoot().resolve("gpu-runtime/src/test/resources/hf");
        return List.of(fixtures.resolve("mixtral-bf16"), fixtures.resolve("olmoe-fp32"), TestModels.demoModel());
    }

    /** The variants: top-p with and without MAXK, every threshold gate, sparsemax, blocks, removed experts. */
    static List<String> specs() throws IOException {
        Path drop = Files.writeString(dir.resolve("drop.txt"), "0: 0 3\n1: 5\n");
        return List.of("top-p:0.5", "top-p:0.9:3", "softmax:0.2", "sigmoid:0.5", "quadratic:0.15", "pioneer:0.15",
                "sparsemax", "batch-top-k:2:4", "drop-experts:" + drop);
    }

    /** Every sequence's per-token log-probs, concatenated, and the expert load, of one engine. */
    record Scores(float[] logProbs, long routed) {
    }

    static Scores score(Path model, Backend backend, LoadOptions options) throws IOException {
        List<int[]> sequences = ReferenceFixtureTest.Reference.read(model).tokens();
        try (Engine engine = Engine.load(model, backend, options)) {
            ScoreBatch batch = engine.score(TokenBatch.of(sequences.toArray(int[][]::new)), new ScoreOptions(true, 0));
            int total = batch.scores().stream().mapToInt(s -> s.tokenLogProbs().length).sum();
            float[] all = new float[total];
            int at = 0;
            for (SequenceScore s : batch.scores()) {
                assertNull(s.error(), model.getFileName() + " " + options.routing());
                System.arraycopy(s.tokenLogProbs(), 0, all, at, s.tokenLogProbs().length);
                at += s.tokenLogProbs().length;
            }
            ExpertLoad load = batch.expertLoad();
            long routed = 0;
            for (int l = 0; l < load.numLayers(); l++) {
                for (long n : load.layer(l)) {
                    routed += n;
                }
            }
            return new Scores(all, routed);
        }
    }

    @Test
    void everyVariantScoresAsOnTheCpu() throws IOException {
        List<String> failures = new ArrayList<>();
        CudaBackend gpu = new CudaBackend(CudaOptions.device(0).withPrecision(Precision.SPLIT_BF16));
        try (CpuBackend cpu = new CpuBackend(4)) {
            for (String spec : specs()) {
                double fromCpu = 0;
                double fromModel = 0;
                for (Path model : models()) {
                    LoadOptions options = LoadOptions.DEFAULT.withRouting(RoutingSpec.parse(spec));
                    Scores want = score(model, cpu, options);
                    Scores own = score(model, cpu, LoadOptions.DEFAULT);
                    Scores got = score(model, gpu, options);
                    Comparison c = Comparison.of(spec + " " + model.getFileName(), want, got, failures);
                    fromCpu += c.meanError();
                    fromModel += Comparison.meanDifference(want.logProbs(), own.logProbs());
                }
                System.out.printf("%s: mean |gpu - cpu| %.2e, mean |variant - model's router| on the cpu %.2e%n",
                        spec, fromCpu / models().size(), fromModel / models().size());
                if (!(fromModel > 3 * fromCpu)) {
                    failures.add(spec + ": the variant moves the CPU's scores by " + fromModel + " in all, not well "
                            + "above the GPU's difference from the CPU, " + fromCpu);
                }
            }
        }
        assertTrue(failures.isEmpty(), String.join("\n", failures));
    }

    /** Deterministic mode and 2:4 experts on variable routing (tokens with no expert among them). */
    @Test
    void deterministicAndTwoFourExpertsTakeVariableRouting() throws IOException {
        List<String> failures = new ArrayList<>();
        CudaOptions split = CudaOptions.device(0).withPrecision(Precision.SPLIT_BF16);
        SparsityPattern twoFour = SparsityPattern.parse("2:4");
        try (CpuBackend cpu = new CpuBackend(4)) {
            for (String spec : List.of("softmax:0.3", "top-p:0.6", "sigmoid:0.6")) {
                for (Path model : models()) {
                    LoadOptions options = LoadOptions.DEFAULT.withRouting(RoutingSpec.parse(spec));
                    Comparison.of(spec + " deterministic " + model.getFileName(), score(model, cpu, options),
                            score(model, new CudaBackend(split.withDeterministic(true)), options), failures);
                    io.moescore.model.ModelConfig config = io.moescore.model.ModelConfig.load(model);
                    if (config.hiddenSize() % 32 == 0 && config.expertFfnSize() % 32 == 0) {
                        LoadOptions pruned = options.withPruneExperts(twoFour);
                        Comparison.of(spec + " 2:4 " + model.getFileName(), score(model, cpu, pruned),
                                score(model, new CudaBackend(split), pruned), failures);
                    }
                }
            }
        }
        assertTrue(failures.isEmpty(), String.join("\n", failures));
    }

    /** GPU scores against the CPU's: the share within tolerance and the routed totals, failures collected. */
    record Comparison(double meanError) {
        static Comparison of(String what, Scores want, Scores got, List<String> failures) {
            int within = 0;
            double worst = 0;
            int worstToken = -1;
            for (int i = 0; i < want.logProbs().length; i++) {
                double err = Math.abs(want.logProbs()[i] - got.logProbs()[i]);
                within += err <= TOLERANCE ? 1 : 0;
                if (!(err <= worst)) {
                    worst = Double.isNaN(err) ? Double.POSITIVE_INFINITY : err;
                    worstToken = i;
                }
            }
            int n = want.logProbs().length;
            System.out.printf("%s: %d of %d tokens within %.0e of the cpu, worst %.2e at token %d; routed pairs "
                    + "cpu %d, gpu %d%n", what, within, n, TOLERANCE, worst, worstToken, want.routed(), got.routed());
            if (within < WITHIN_SHARE * n || Double.isInfinite(worst)) {
                failures.add(what + ": " + within + " of " + n + " tokens within " + TOLERANCE + " (worst " + worst
                        + " at token " + worstToken + ": cpu " + want.logProbs()[worstToken] + ", gpu "
                        + got.logProbs()[worstToken] + ")");
            }
            if (Math.abs(want.routed() - got.routed()) > 0.02 * Math.max(1, want.routed())) {
                failures.add(what + ": " + got.routed() + " token-expert pairs routed, the cpu " + want.routed());
            }
            return new Comparison(meanDifference(want.logProbs(), got.logProbs()));
        }

        static double meanDifference(float[] a, float[] b) {
            double sum = 0;
            for (int i = 0; i < a.length; i++) {
                sum += Math.abs(a[i] - b[i]);
            }
            return sum / Math.max(1, a.length);
        }
    }
}
