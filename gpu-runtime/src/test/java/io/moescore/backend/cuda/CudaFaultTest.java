package io.moescore.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.moescore.GpuTest;
import io.moescore.TestModels;
import io.moescore.backend.GpuFaultException;
import io.moescore.backend.Tensor;
import io.moescore.engine.Engine;
import io.moescore.engine.ScoreOptions;
import io.moescore.batch.TokenBatch;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;
import jcuda.driver.JCudaDriver;
import org.junit.jupiter.api.Test;

/**
 * An unrecoverable CUDA error is contained: the call that meets it fails with a {@link GpuFaultException} naming
 * the CUDA error, the runtime is marked broken, and every later call (an upload, a whole forward pass) fails at
 * once naming the first error instead of touching the device. The fault is a test-only kernel storing through an
 * address no allocation owns (src/test/cuda). It breaks the process's CUDA context for good, so it runs in a child
 * JVM ({@link #main}) and the other GPU tests keep theirs.
 */
@GpuTest
class CudaFaultTest {

    @Test
    void anIllegalAddressBreaksTheRuntimeAndEveryLaterCallSaysWhy() throws Exception {
        List<String> command = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElse("java"),
                "-cp", System.getProperty("java.class.path")));
        command.addAll(jvmOptions());
        command.add(CudaFaultTest.class.getName());
        Process child = new ProcessBuilder(command).redirectErrorStream(true).start();
        String output = new String(child.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(child.waitFor(120, TimeUnit.SECONDS), "the child JVM did not finish");
        System.out.println(output);
        assertEquals(0, child.exitValue(), "child JVM:\n" + output);
        assertTrue(output.contains("before the fault: scored"), output);
        assertTrue(output.matches("(?s).*the faulting call: CUDA device 0 .*CUDA_ERROR_ILLEGAL_ADDRESS in download.*"),
                output);
        assertTrue(output.matches("(?s).*a later upload: .*unusable since CUDA_ERROR_ILLEGAL_ADDRESS.*"), output);
        assertTrue(output.matches("(?s).*a later forward pass: .*unusable since CUDA_ERROR_ILLEGAL_ADDRESS.*"), output);
        assertTrue(output.contains("runtime broken: true"), output);
    }

    /** The --add-opens and similar flags this JVM runs with, for the child. */
    private static List<String> jvmOptions() {
        return java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments().stream()
                .filter(a -> a.startsWith("--add-") || a.startsWith("-Xmx")).toList();
    }

    /** The child: score, fault, then show what each later call says. Exit 0 when every step behaved. */
    public static void main(String[] args) throws IOException {
        CudaBackend backend = new CudaBackend(CudaOptions.device(0));
        GpuRuntime gpu = backend.runtime();
        try (Engine engine = Engine.load(TestModels.demoModel(), backend)) {
            int[] tokens = {1, 2, 3, 4, 5, 6, 7, 8};
            engine.score(TokenBatch.of(tokens), ScoreOptions.SUMS_ONLY);
            System.out.println("before the fault: scored");
            Tensor x = backend.activation(new float[] {1, 2, 3, 4}, 2, 2);
            storeThroughBadAddress(gpu);
            expectFault("the faulting call", () -> backend.toHost(x));
            expectFault("a later upload", () -> backend.activation(new float[] {1}, 1, 1));
            expectFault("a later forward pass", () -> engine.score(TokenBatch.of(tokens), ScoreOptions.SUMS_ONLY));
            System.out.println("runtime broken: " + gpu.broken());
        }
        System.exit(0);
    }

    private static void storeThroughBadAddress(GpuRuntime gpu) throws IOException {
        byte[] fatbin;
        try (InputStream in = CudaFaultTest.class.getResourceAsStream("/io/moescore/cuda/test_kernels.fatbin")) {
            if (in == null) {
                throw new IllegalStateException("test_kernels.fatbin is not on the test classpath (built without nvcc?)");
            }
            fatbin = in.readAllBytes();
        }
        gpu.bind();
        byte[] terminated = java.util.Arrays.copyOf(fatbin, fatbin.length + 1);
        CUmodule module = new CUmodule();
        JCudaDriver.cuModuleLoadData(module, terminated);
        CUfunction store = new CUfunction();
        JCudaDriver.cuModuleGetFunction(store, module, "store_through");
        CUdeviceptr unowned = new CUdeviceptr().withByteOffset(0x1000);
        JCudaDriver.cuLaunchKernel(store, 1, 1, 1, 32, 1, 1, 0, gpu.stream(),
                Pointer.to(Pointer.to(unowned)), null);
    }

    private static void expectFault(String step, Runnable call) {
        try {
            call.run();
            System.out.println(step + ": no fault (wrong)");
            System.exit(3);
        } catch (GpuFaultException e) {
            System.out.println(step + ": " + e.getMessage());
        } catch (RuntimeException e) {
            System.out.println(step + ": " + e + " (wrong exception type)");
            System.exit(4);
        }
    }
}
