package io.moescore.engine;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.moescore.TestModels;
import io.moescore.backend.cuda.CudaBackend;
import io.moescore.backend.cuda.CudaOptions;
import io.moescore.backend.cuda.GpuRuntime;
import io.moescore.routing.RoutingSpec;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The CUDA backend runs the model's router and top-k:K only; every other --routing spec is refused when the engine
 * is built, naming the spec and the CPU backend (never a failure mid-scoring). Not run without a device.
 */
@Tag("gpu")
class CudaRoutingRefusalTest {
    @BeforeAll
    static void needsGpu() {
        String why = GpuRuntime.whyUnavailable(0);
        assumeTrue(why == null, why + ": skipping GPU tests");
    }

    @Test
    void otherRoutersAreRefusedByName() {
        try (CudaBackend backend = new CudaBackend(CudaOptions.device(0))) {
            for (String spec : new String[] {"sparsemax", "top-p:0.9", "batch-top-k:2:64", "sigmoid:0.3"}) {
                UnsupportedModelException e = assertThrows(UnsupportedModelException.class, () -> Engine.load(
                        TestModels.demoModel(), backend, LoadOptions.DEFAULT.withRouting(RoutingSpec.parse(spec))));
                assertTrue(e.getMessage().contains("--routing " + spec) && e.getMessage().contains("--backend cpu"),
                        e.getMessage());
            }
            Engine.load(TestModels.demoModel(), backend, LoadOptions.DEFAULT.withRouting(RoutingSpec.parse("top-k:1")))
                    .close();
        }
    }
}
