package io.moescore.engine;

import io.moescore.GpuTest;
import io.moescore.batch.ScoreBatch;
import io.moescore.batch.SequenceScore;
import io.moescore.batch.TokenBatch;

import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.moescore.backend.Precision;
import io.moescore.backend.cuda.CudaBackend;
import io.moescore.backend.cuda.CudaOptions;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The whole model on the CUDA backend against transformers' float32 references (the committed fixtures and the
 * demo model's reference.json). split-bf16: every next-token log-prob within 2e-2 and the same top-5 after the
 * last token in at least 95% of sequences (measured: worst 3.1e-4, 34 of 34).
 *
 * <p>bf16 and fp16 (one rounding of each GEMM input) are judged beside transformers' own run at that precision
 * ({@link PrecisionBounds}, reference-precision.json): positions where the reference's routing is a tie are left out
 * (counted, printed, at most 5% of them), every other log-prob within 0.5, and per fixture no more tokens off by over
 * 2e-2 than transformers' own bf16 / fp16 run has plus 1% of the fixture's tokens; the same ordered top-5 in 90%
 * (bf16) / 95% (fp16) of sequences. Measured on an H100 (twelfth session, routers on the norm's 16-bit copy as
 * transformers' bf16/fp16 run routes): bf16 worst 0.266 (demo model; transformers' own bf16: 1.35), 91 of 706 judged
 * demo tokens over 2e-2 (transformers: 260 of 751); fp16 worst 0.082 (demo; transformers' fp16: 0.314), 7 of 706
 * over (transformers: 23 of 751); top-5 31 / 34 of 34. With the fp32 router product instead: demo bf16 0.358,
 * fp16 0.276 and 27 over (bench/results/session12).
 */
@GpuTest
class CudaReferenceFixtureTest {
    static final double SPLIT_TOLERANCE = 2e-2;
    static final double BF16_TOLERANCE = 0.5;

    /**
     * The issue-24 families that need kernels the CUDA backend lacks (gpt-oss: sinks, router bias, biased clamped
     * SwiGLU experts): refused before loading, naming the model and what is missing.
     */
    @Test
    void newFamiliesAreRefusedNamingWhatIsMissing() {
        CudaBackend backend = new CudaBackend(CudaOptions.device(0));
        for (Path model : io.moescore.TestModels.familyFixtures()) {
            if (!java.nio.file.Files.exists(model.resolve("config.json"))
                    || CudaBackend.missingKernels(io.moescore.model.ModelConfig.load(model)).isEmpty()) {
                continue;
            }
            UnsupportedModelException e = org.junit.jupiter.api.Assertions.assertThrows(
                    UnsupportedModelException.class, () -> Engine.load(model, backend));
            assertTrue(e.getMessage().contains(model.toString()) && e.getMessage().contains("lacks"), e.getMessage());
        }
    }

    @Test
    void splitBf16MatchesTransformersWithinTwoHundredths() throws IOException {
        check(Precision.SPLIT_BF16, SPLIT_TOLERANCE, 0.95);
    }

    @Test
    void bf16KeepsTheTopFiveAndStaysNearTransformers() throws IOException {
        check(Precision.BF16, BF16_TOLERANCE, 0.90);
    }

    /** fp16 (11-bit GEMM inputs; bf16 checkpoints held exactly, fp32 ones rounded to fp16). */
    @Test
    void fp16StaysAsNearAsTransformersOwnFp16() throws IOException {
        check(Precision.FP16, BF16_TOLERANCE, 0.95);
    }

    /**
     * The fixtures checked on the GPU: the first four families' and the demo model, and the issue-24 families' that
     * the CUDA backend runs (Granite MoE's multipliers), once generated.
     */
    static java.util.stream.Stream<Path> models() {
        return java.util.stream.Stream.concat(ReferenceFixtureTest.models(), ReferenceFixtureTest.familyModels()
                .filter(m -> java.nio.file.Files.exists(m.resolve("config.json"))
                        && CudaBackend.missingKernels(io.moescore.model.ModelConfig.load(m)).isEmpty()));
    }

    /** @param tolerance  bound on every fixture's worst per-token log-prob error (routing ties left out) */
    private static void check(Precision precision, double tolerance, double top5Share)
            throws IOException {
        CudaBackend backend = new CudaBackend(CudaOptions.device(0).withPrecision(precision));
        int sequences = 0;
        int sameTop5 = 0;
        int tokens = 0;
        List<String> failures = new ArrayList<>();
        int ties = 0;
        for (Path model : models().toList()) {
            ReferenceFixtureTest.Reference ref = ReferenceFixtureTest.Reference.read(model);
            PrecisionBounds bounds = precision == Precision.SPLIT_BF16 ? null : PrecisionBounds.read(model);
            try (Engine engine = Engine.load(model, backend)) {
                ScoreBatch batch = engine.score(TokenBatch.of(ref.tokens().toArray(int[][]::new)), new ScoreOptions(true, 5));
                double worst = 0;
                String worstAt = "none";
                double worstAtTie = 0;
                int over = 0;
                int total = 0;
                int tiesHere = 0;
                for (int s = 0; s < ref.tokens().size(); s++) {
                    SequenceScore score = batch.scores().get(s);
                    assertNull(score.error());
                    double[] expected = ref.logProbs().get(s);
                    for (int i = 0; i < expected.length; i++) {
                        double err = Math.abs(score.tokenLogProbs()[i] - expected[i]);
                        err = Double.isNaN(err) ? Double.POSITIVE_INFINITY : err;
                        if (bounds != null && bounds.tie(s, i)) {
                            tiesHere++;
                            worstAtTie = Math.max(worstAtTie, err);
                            continue;
                        }
                        if (err > worst) {
                            worst = err;
                            worstAt = "sequence " + s + " position " + i
                                    + (bounds == null ? "" : ", routing margin " + bounds.margins().get(s)[i]);
                        }
                        over += err > SPLIT_TOLERANCE ? 1 : 0;
                        total++;
                    }
                    sequences++;
                    sameTop5 += java.util.Arrays.equals(ref.top5().get(s), score.topTokens()) ? 1 : 0;
                }
                String dtype = precision == Precision.FP16 ? "fp16" : "bf16";
                System.out.printf("cuda %s %s: worst |log-prob error| %.2e (%s), %d of %d tokens over %.0e;"
                                + " %d routing ties left out (worst there %.2e); %s%n",
                        precision.userName(), model.getFileName(), worst, worstAt, over, total, SPLIT_TOLERANCE,
                        tiesHere, worstAtTie, bounds == null ? "-" : bounds.transformers(dtype));
                tokens += total;
                ties += tiesHere;
                if (!(worst <= tolerance)) {
                    failures.add(model.getFileName() + ": worst log-prob error " + worst + " > " + tolerance
                            + " at " + worstAt);
                }
                int allowed = bounds == null ? total : bounds.overInTransformers(dtype) + total / 100;
                if (over > allowed) {
                    failures.add(model.getFileName() + ": " + over + " tokens over " + SPLIT_TOLERANCE + ", more than "
                            + allowed + " (" + bounds.transformers(dtype) + ", plus 1% of the fixture's tokens)");
                }
            }
        }
        assertTrue(ties <= 0.05 * (tokens + ties), precision.userName() + ": " + ties + " of " + (tokens + ties)
                + " positions are routing ties: too few left to judge");
        System.out.printf("cuda %s: same top-5 in %d of %d sequences%n", precision.userName(), sameTop5, sequences);
        assertTrue(failures.isEmpty(), precision.userName() + ": " + String.join("; ", failures));
        assertTrue(sameTop5 >= top5Share * sequences, "top-5 agreement " + sameTop5 + "/" + sequences);
    }
}
