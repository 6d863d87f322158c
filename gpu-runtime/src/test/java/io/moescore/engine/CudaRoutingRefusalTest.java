package io.moescore.engine;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.moescore.GpuTest;
import io.moescore.TestModels;
import io.moescore.backend.cuda.CudaBackend;
import io.moescore.backend.cuda.CudaOptions;
import io.moescore.routing.Router;
import io.moescore.routing.RoutingSpec;
import io.moescore.routing.TopKSoftmaxRouter;
import io.moescore.routing.TopPRouter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The CUDA backend builds an engine for every --routing spec of a softmax top-k model; what it has no kernel for
 * (a ranking router past ROUTER_MAX_K = 16 experts per token, which needs a model of more experts than any test
 * model has) is refused when the engine is built, naming the spec and the CPU backend, never mid-scoring. Not run
 * without a device.
 */
@GpuTest
class CudaRoutingRefusalTest {
    @TempDir
    Path dir;

    @Test
    void everyVariantLoadsAndRoutersPastTheLimitAreRefusedByName() throws IOException {
        Path drop = Files.writeString(dir.resolve("drop.json"), "{\"1\": [2, 5]}");
        try (CudaBackend backend = new CudaBackend(CudaOptions.device(0))) {
            for (String spec : new String[] {"model", "top-k:1", "top-p:0.9", "top-p:0.5:4", "sigmoid:0.3",
                "softmax", "quadratic:0.2", "pioneer:0.1", "sparsemax", "batch-top-k:2", "batch-top-k:2:64",
                "drop-experts:" + drop}) {
                Engine.load(TestModels.demoModel(), backend, LoadOptions.DEFAULT.withRouting(RoutingSpec.parse(spec)))
                        .close();
            }
            refused(backend, "top-k:17", Arrays.asList(null, new TopKSoftmaxRouter(17, true)));
            refused(backend, "top-p:0.9:17", List.of(new TopPRouter(0.9f, 17, true)));
        }
    }

    private static void refused(CudaBackend backend, String spec, List<Router> routers) {
        UnsupportedModelException e = assertThrows(UnsupportedModelException.class,
                () -> Engine.requireRoutable(backend, RoutingSpec.parse(spec), routers));
        assertTrue(e.getMessage().contains("--routing " + spec) && e.getMessage().contains("--backend cpu"),
                e.getMessage());
    }
}
