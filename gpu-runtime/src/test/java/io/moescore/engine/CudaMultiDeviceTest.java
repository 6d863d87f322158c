package io.moescore.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.moescore.GpuTest;
import io.moescore.TestModels;
import io.moescore.backend.Backend;
import io.moescore.backend.Devices;
import io.moescore.backend.Precision;
import io.moescore.backend.cuda.CudaBackend;
import io.moescore.backend.cuda.CudaOptions;
import io.moescore.batch.ScoreBatch;
import io.moescore.batch.TokenBatch;
import io.moescore.model.ModelConfig;
import io.moescore.placement.PlanFile;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link MultiDeviceTest} on the GPU (written without one, NOT yet run): OLMoE's top-3 fixture's experts over two and
 * three CUDA backends of GPU 0 (logical devices sharing its context), round-robin and replicated, in deterministic
 * mode, against one backend's scores. What it checks: the host routing copied to a device
 * ({@code Backend.expertRouting}, HostRoutingUpload) is read as the device's own would be, and a deterministic
 * expert output row does not depend on the rows beside it, so the host's expert-order sum equals the GPU's combine
 * bit for bit. A failure of the second kind would say the batch-invariant combine is not per-row invariant after all.
 */
@GpuTest
class CudaMultiDeviceTest {
    @TempDir
    Path dir;

    static CudaBackend gpu() {
        return new CudaBackend(CudaOptions.device(0).withPrecision(Precision.BF16).withDeterministic(true));
    }

    @Test
    void expertsOverTwoAndThreeGpuBackendsScoreBitIdentically() throws IOException {
        Path model = TestModels.repoRoot().resolve("gpu-runtime/src/test/resources/hf/olmoe-fp32");
        ModelConfig c = ModelConfig.load(model);
        TokenBatch tokens = ExpertStreamingTest.batch(c, 3535L, 19, 7, 30, 64);
        ScoreBatch want;
        try (CudaBackend one = gpu(); Engine engine = Engine.load(model, one)) {
            want = engine.score(tokens, MultiDeviceTest.OPTIONS);
        }
        MultiDeviceTest plans = new MultiDeviceTest();
        plans.dir = dir;
        for (int n = 2; n <= 3; n++) {
            for (PlanFile placement : plans.placements(c, n)) {
                List<Backend> list = new ArrayList<>();
                for (int d = 0; d < n; d++) {
                    list.add(gpu());
                }
                try (Devices devices = Devices.of(list);
                     Engine engine = Engine.load(model, devices, LoadOptions.DEFAULT.withPlacement(placement))) {
                    ScoreBatch got = engine.score(tokens, MultiDeviceTest.OPTIONS);
                    MultiDeviceTest.assertSameScores(want, got, c, n + " GPU backends, "
                            + MultiDeviceTest.label(placement));
                    assertEquals(MultiDeviceTest.routedEntries(want, c),
                            Arrays.stream(engine.expertStore().entriesPerDevice()).sum());
                }
            }
        }
    }
}
