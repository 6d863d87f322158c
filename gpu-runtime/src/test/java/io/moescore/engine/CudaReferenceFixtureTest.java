package io.moescore.engine;

import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.moescore.backend.cuda.CudaBackend;
import io.moescore.backend.cuda.GpuRuntime;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The whole model on the CUDA backend against transformers' float32 references: every next-token log-prob
 * within 2e-2 (bf16 compute), the same top-5 after the last token in at least 95% of sequences.
 */
@Tag("gpu")
class CudaReferenceFixtureTest {
    static final double TOLERANCE = 2e-2;

    @Test
    void everyFixtureMatchesTransformersWithinBf16Tolerance() throws IOException {
        assumeTrue(GpuRuntime.hasKernels(), "this build has no CUDA kernels: skipping");
        assumeTrue(GpuRuntime.deviceCount() > 0, "no CUDA device on this machine: skipping GPU tests");
        CudaBackend backend = new CudaBackend(0);
        int sequences = 0;
        int sameTop5 = 0;
        List<Path> models = ReferenceFixtureTest.models().toList();
        List<String> failures = new java.util.ArrayList<>();
        for (Path model : models) {
            ReferenceFixtureTest.Reference ref = ReferenceFixtureTest.Reference.read(model);
            try (Engine engine = Engine.load(model, backend)) {
                ScoreBatch batch = engine.score(TokenBatch.of(ref.tokens().toArray(int[][]::new)), new ScoreOptions(true, 5));
                double worst = 0;
                int over = 0;
                int total = 0;
                for (int s = 0; s < ref.tokens().size(); s++) {
                    SequenceScore score = batch.scores().get(s);
                    assertNull(score.error());
                    double[] expected = ref.logProbs().get(s);
                    for (int i = 0; i < expected.length; i++) {
                        double err = Math.abs(score.tokenLogProbs()[i] - expected[i]);
                        worst = Math.max(worst, Double.isNaN(err) ? Double.POSITIVE_INFINITY : err);
                        over += err > TOLERANCE ? 1 : 0;
                        total++;
                    }
                    sequences++;
                    sameTop5 += java.util.Arrays.equals(ref.top5().get(s), score.topTokens()) ? 1 : 0;
                }
                System.out.printf("cuda %s: worst |log-prob error| %.2e, %d of %d tokens over %.0e%n",
                        model.getFileName(), worst, over, total, TOLERANCE);
                if (!(worst <= TOLERANCE)) {
                    failures.add(model.getFileName() + ": worst log-prob error " + worst);
                }
            }
        }
        System.out.printf("cuda: same top-5 in %d of %d sequences%n", sameTop5, sequences);
        assertTrue(failures.isEmpty(), String.join("; ", failures));
        assertTrue(sameTop5 >= 0.95 * sequences, "top-5 agreement " + sameTop5 + "/" + sequences);
    }
}
