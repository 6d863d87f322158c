package io.moescore.backend.cuda;

import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.moescore.GpuTest;
import io.moescore.backend.Tensor;
import io.moescore.backend.cpu.CpuBackend;
import io.moescore.routing.ExpertRouting;
import io.moescore.routing.HostExpertRouting;
import io.moescore.routing.TopKSoftmaxRouter;
import java.util.Random;
import jcuda.Pointer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * router.cu with NaN and infinite logits routes exactly as TopKSoftmaxRouter does (experts 0..k-1, NaN gates),
 * instead of routing such a row to no expert (index 0x7fffffff); finite rows beside them are untouched.
 */
@GpuTest
class CudaRouterNonFiniteTest {
    static CpuBackend cpu;
    static CudaBackend gpu;

    @BeforeAll
    static void start() {
        cpu = new CpuBackend(2);
        gpu = new CudaBackend(CudaOptions.device(0));
    }

    @AfterAll
    static void stop() {
        if (cpu != null) {
            cpu.close();
        }
        if (gpu != null) {
            gpu.close();
        }
    }

    @Test
    void nonFiniteRowsRouteAsOnTheCpu() {
        long seed = System.nanoTime();
        System.out.println("CudaRouterNonFiniteTest seed " + seed);
        Random random = new Random(seed);
        for (int experts : new int[] {5, 40, 64}) {
            int rows = 64;
            float[] logits = new float[rows * experts];
            for (int i = 0; i < logits.length; i++) {
                logits[i] = (float) random.nextGaussian();
            }
            for (int t = 0; t < rows; t += 4) {  // every 4th row: NaN, +inf, all -inf in turn
                int base = t * experts;
                switch ((t / 4) % 3) {
                    case 0 -> logits[base + random.nextInt(experts)] = Float.NaN;
                    case 1 -> logits[base + random.nextInt(experts)] = Float.POSITIVE_INFINITY;
                    default -> java.util.Arrays.fill(logits, base, base + experts, Float.NEGATIVE_INFINITY);
                }
            }
            for (int k : new int[] {1, 2, 4}) {
                TopKSoftmaxRouter router = new TopKSoftmaxRouter(k, k > 1);
                HostExpertRouting want = router.route(logits, rows, experts);
                try (Tensor onGpu = gpu.activation(logits, rows, experts);
                     ExpertRouting got = gpu.route(onGpu, router)) {
                    String what = "seed " + seed + ", " + experts + " experts, top-" + k;
                    assertArrayEquals(want.tokensPerExpert(), got.tokensPerExpert(), what);
                    CudaExpertRouting r = (CudaExpertRouting) got;
                    int[] tokens = new int[r.entries];
                    float[] gates = new float[r.entries];
                    gpu.runtime().bind();
                    cuStreamSynchronize(gpu.runtime().stream());
                    cuMemcpyDtoH(Pointer.to(tokens), r.tokens, r.entries * 4L);
                    cuMemcpyDtoH(Pointer.to(gates), r.gates, r.entries * 4L);
                    assertArrayEquals(want.tokens(), tokens, what);
                    for (int i = 0; i < gates.length; i++) {
                        assertEquals(Float.isNaN(want.gates()[i]), Float.isNaN(gates[i]), what + " entry " + i);
                    }
                }
            }
        }
    }
}
