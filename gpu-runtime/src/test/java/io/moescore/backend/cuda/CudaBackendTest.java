package io.moescore.backend.cuda;

import static io.moescore.backend.cuda.KernelComparisons.SEED;
import static io.moescore.backend.cuda.KernelComparisons.assertValuesClose;
import static io.moescore.backend.cuda.KernelComparisons.assertLogProbsClose;
import static io.moescore.backend.cuda.KernelComparisons.relativeError;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.moescore.GpuTest;
import io.moescore.backend.Backend;
import io.moescore.backend.ExpertWeights;
import io.moescore.backend.IntTensor;
import io.moescore.backend.LogProbs;
import io.moescore.backend.Precision;
import io.moescore.backend.Tensor;
import io.moescore.backend.WeightSlice;
import io.moescore.backend.cpu.CpuBackend;
import io.moescore.routing.ExpertRouting;
import io.moescore.routing.TopKSoftmaxRouter;
import io.moescore.model.Checkpoint;
import io.moescore.model.DType;
import io.moescore.model.SafeTensorsWriter;
import io.moescore.sparse.Sparse24;
import io.moescore.sparse.VectorSparse;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every CUDA kernel against the CPU reference on fresh random inputs (weights rounded to bf16 first, so the
 * only difference left is the GPU's bf16 rounding of activations on their way into the tensor cores).
 * Runs on a machine with a CUDA device: mvn -Pgpu test (README, developer notes).
 */
@GpuTest
class CudaBackendTest {
    static CpuBackend cpu;
    static CudaBackend gpu;
    final Random random = new Random(SEED);
    @TempDir
    Path dir;
    int files;

    @BeforeAll
    static void start() {
        cpu = new CpuBackend(4);
        gpu = new CudaBackend(CudaOptions.device(0));
        System.out.println("GPU tests on " + gpu.deviceName() + ", random inputs from seed " + SEED
                + " (repeat with -Dmoescore.test.seed=" + SEED + ")");
    }

    @AfterAll
    static void stop() {
        if (cpu != null) {
            cpu.close();
        }
    }

    float[] randn(int n, double scale) {
        float[] f = new float[n];
        for (int i = 0; i < n; i++) {
            f[i] = (float) (random.nextGaussian() * scale);
        }
        return f;
    }

    /** Values representable in bf16, so CPU and GPU start from identical weights. */
    static float[] bf16(float[] f) {
        short[] b = CudaWeights.toBf16(f);
        float[] out = new float[f.length];
        for (int i = 0; i < f.length; i++) {
            out[i] = Float.intBitsToFloat((b[i] & 0xffff) << 16);
        }
        return out;
    }

    /** A weight placed on both backends from one safetensors file. */
    Tensor[] weight(float[] values, int rows, int cols) throws IOException {
        return weight(values, rows, cols, gpu);
    }

    /** The same, on a given CUDA backend (weights are uploaded in its precision's 16-bit type). */
    Tensor[] weight(float[] values, int rows, int cols, CudaBackend gpu) throws IOException {
        Path file = dir.resolve("w" + (files++));
        java.nio.file.Files.createDirectories(file);
        new SafeTensorsWriter(java.util.Map.of()).add("w", DType.F32, values, rows, cols).write(file.resolve("model.safetensors"));
        try (Checkpoint c = Checkpoint.open(file)) {
            WeightSlice s = WeightSlice.whole(c.get("w"), rows, cols);
            return new Tensor[] {cpu.weight(s), gpu.weight(s)};
        }
    }

    Tensor[] act(float[] v, int rows, int cols) {
        return new Tensor[] {cpu.activation(v, rows, cols), gpu.activation(v, rows, cols)};
    }

    /** Poisoned (NaN) output tensors on both backends: an element a kernel fails to write stays NaN. */
    Tensor[] poisoned(int rows, int cols) {
        float[] nan = new float[rows * cols];
        java.util.Arrays.fill(nan, Float.NaN);
        return act(nan, rows, cols);
    }

    /** Returns the relative error, after asserting it is within tolerance. */
    double assertClose(Backend b1, Tensor cpuT, Tensor gpuT, double tolerance, String what) {
        return assertValuesClose(cpu.toHost(cpuT), gpu.toHost(gpuT), cpuT.cols(), tolerance, what);
    }

    static double maxDifference(float[] a, float[] b) {
        double far = 0;
        for (int i = 0; i < a.length; i++) {
            far = Math.max(far, Math.abs(a[i] - b[i]));
        }
        return far;
    }

    /** M x N x K: tensor-core shapes with ragged edges in every dimension (K not a multiple of the 32 or 64
     * of a K slice), and small-N ones that take the fp32 path. */
    static final int[][] LINEAR_SHAPES = {{1, 64, 64}, {37, 200, 96}, {300, 1000, 256}, {129, 8, 64}, {513, 130, 40},
        {1000, 700, 200}, {129, 520, 72}, {5, 300, 8}, {2048, 1536, 1024}};

    @Test
    void linearOnTensorCoresAndSmallFp32() throws IOException {
        System.out.println("dense GEMMs on " + gpu.gemmPath());
        linearAgainstCpu(gpu);
    }

    /**
     * The default backend runs whichever kernel the autotuner picks per shape: every kernel family this GPU has is
     * also checked pinned (on a Hopper: wgmma 128x256 and wgmma.sp in 256-row tiles, wgmma 128x128 and wgmma.sp in
     * 128-row tiles, and the mma.sync / mma.sp kernels of sm_80-89).
     */
    @Test
    void everyKernelFamilyMatchesTheCpu() throws IOException {
        for (Kernels k : pinnableFamilies()) {
            CudaBackend pinned = new CudaBackend(CudaOptions.device(0).withKernels(k));
            linearAgainstCpu(pinned);
            expertsAgainstCpu(pinned);
            sparseExpertsAgainstCpu(pinned);  // pinned WGMMA_N128: the 2:4 kernels in 128-row tiles
        }
    }

    /**
     * The kernel families this GPU can be pinned to: on a Hopper wgmma 128x256, 128x128, warp-specialized 128x256,
     * paired 128x128 and mma.sync, else mma.sync.
     */
    static Kernels[] pinnableFamilies() {
        boolean hopper = GpuRuntime.forDevice(0).computeCapability().equals("9.0");
        return hopper ? new Kernels[] {Kernels.WGMMA, Kernels.WGMMA_N128, Kernels.WGMMA_WS, Kernels.WGMMA_PAIRED,
                Kernels.MMA_SYNC}
                : new Kernels[] {Kernels.MMA_SYNC};
    }

    /** The tuner keeps the faster of two variants and a fresh tuner reads the choice back from its file. */
    @Test
    void tunerKeepsTheFasterVariantAndRemembersIt() throws IOException {
        Tensor[] w = weight(bf16(randn(1024 * 512, 0.05)), 1024, 512);
        Tensor[] x = act(randn(2048 * 512, 1), 2048, 512);
        Tensor[] out = poisoned(2048, 1024);
        Path file = dir.resolve("kernels.json");
        KernelTuner tuner = new KernelTuner("test GPU", file);
        KernelVariant slow = fakeVariant("slow");
        KernelVariant fast = fakeVariant("fast");
        java.util.function.Consumer<KernelVariant> launch = v -> {
            for (int i = 0; i < (v == slow ? 8 : 1); i++) {
                gpu.linear(x[1], w[1], null, out[1]);
            }
        };
        assertEquals(fast, tuner.pick("shape A", java.util.List.of(slow, fast), launch, CudaBackendTest::holdStream,
                GpuRuntime.forDevice(0).stream()));
        assertTrue(java.nio.file.Files.readString(file).contains("\"shape A\" : \"fast\""));
        KernelTuner again = new KernelTuner("test GPU", file);
        assertEquals(fast, again.pick("shape A", java.util.List.of(slow, fast), v -> {
            throw new AssertionError("a remembered shape is not timed again");
        }, CudaBackendTest::holdStream, GpuRuntime.forDevice(0).stream()));
    }

    /**
     * The tuner times the GPU, not the host: a candidate whose host side takes 200 us per launch (as a library call
     * may) but whose kernel is 4x shorter beats one that enqueues at once but runs 4 kernels. Timing single
     * launches between events (the old way) charged the host's time to the first and picked the second.
     */
    @Test
    void tunerTimesTheDeviceNotTheHostsEnqueueing() throws IOException {
        Tensor[] w = weight(bf16(randn(1024 * 512, 0.05)), 1024, 512);
        Tensor[] x = act(randn(2048 * 512, 1), 2048, 512);
        Tensor[] out = poisoned(2048, 1024);
        KernelTuner tuner = new KernelTuner("test GPU", null);
        KernelVariant slowHost = fakeVariant("slow host, one kernel");
        KernelVariant fastHost = fakeVariant("fast host, four kernels");
        java.util.function.Consumer<KernelVariant> launch = v -> {
            if (v == slowHost) {
                long until = System.nanoTime() + 200_000;
                while (System.nanoTime() < until) {
                    Thread.onSpinWait();
                }
            }
            for (int i = 0; i < (v == slowHost ? 1 : 4); i++) {
                gpu.linear(x[1], w[1], null, out[1]);
            }
        };
        assertEquals(slowHost, tuner.pick("shape B", java.util.List.of(fastHost, slowHost), launch,
                CudaBackendTest::holdStream, GpuRuntime.forDevice(0).stream()));
    }

    /** The stream hold KernelChoice gives the tuner (timing.cu), on this thread's stream. */
    static void holdStream() {
        KernelChoice.holdStream(new CudaLauncher(GpuRuntime.forDevice(0)));
    }

    /** A variant the tuner only knows by name (the test launches something else for it). */
    static KernelVariant fakeVariant(String name) {
        return new KernelVariant(name, KernelVariant.Family.LINEAR, HalfType.BF16, Kernels.WGMMA, 128, 256, 0, null,
                true);
    }

    /**
     * cuBLASLt (offered to the tuner where the machine has it) against the CPU on every linear shape whose operands
     * are 16-bit rows, called directly so that it is checked whether or not the tuner picks it.
     */
    @Test
    void cublasLtMatchesTheCpuWhereTheMachineHasIt() throws IOException {
        CublasLt lt = GpuRuntime.forDevice(0).cublasLt(HalfType.BF16);
        assumeTrue(lt != null, "no cuBLASLt on this machine (-Dmoescore.cublasLt=FILE names one)");
        System.out.println("cuBLASLt " + lt.source());
        DevicePool pool = GpuRuntime.forDevice(0).pool();
        jcuda.driver.CUdeviceptr workspace = pool.allocate(CublasLt.WORKSPACE_BYTES);
        int checked = 0;
        try {
            for (int[] shape : LINEAR_SHAPES) {
                int m = shape[0];
                int n = shape[1];
                int k = shape[2];
                float[] xv = bf16(randn(m * k, 1));
                CudaTensor xRows = (CudaTensor) weight(xv, m, k)[1];  // the GEMM input: bf16 rows
                Tensor[] w = weight(bf16(randn(n * k, 1 / Math.sqrt(k))), n, k);
                Tensor[] b = weight(randn(n, 0.1), 1, n);
                if (xRows.half == null || ((CudaTensor) w[1]).half == null) {
                    continue;  // small matrices are kept in fp32 and never reach a tensor-core product
                }
                Tensor[] x = act(xv, m, k);
                Tensor[] out = poisoned(m, n);
                cpu.linear(x[0], w[0], b[0], out[0]);
                for (CublasLt.Algorithm algorithm : lt.algorithms(m, n, k, true)) {  // every one the tuner may pick
                    Tensor[] fresh = poisoned(m, n);
                    lt.multiply(algorithm, xRows.half, ((CudaTensor) w[1]).half, ((CudaTensor) b[1]).f32,
                            ((CudaTensor) fresh[1]).f32, m, n, k, workspace, GpuRuntime.forDevice(0).stream());
                    assertClose(cpu, out[0], fresh[1], 1e-2, algorithm.name() + " linear " + m + "x" + n + "x" + k);
                }
                checked++;
            }
        } finally {
            pool.release(workspace, CublasLt.WORKSPACE_BYTES);
        }
        assertTrue(checked >= 3, "only " + checked + " shapes had 16-bit operands");
    }

    /** @return the largest relative error over the tensor-core shapes */
    double linearAgainstCpu(CudaBackend backend) throws IOException {
        double worst = 0;
        for (int[] shape : LINEAR_SHAPES) {
            int m = shape[0];
            int n = shape[1];
            int k = shape[2];
            Tensor[] w = weight(bf16(randn(n * k, 1 / Math.sqrt(k))), n, k, backend);
            Tensor[] b = weight(randn(n, 0.1), 1, n, backend);
            Tensor[] x = act(randn(m * k, 1), m, k);
            Tensor[] out = poisoned(m, n);
            cpu.linear(x[0], w[0], b[0], out[0]);
            backend.linear(x[1], w[1], b[1], out[1]);
            boolean small = n <= CudaBackend.SMALL_WEIGHT_ROWS;
            double err = assertClose(cpu, out[0], out[1], small ? 1e-5 : 1e-2,
                    backend.precision().userName() + " " + backend.gemmPath() + " linear " + m + "x" + n + "x" + k);
            worst = small ? worst : Math.max(worst, err);
        }
        return worst;
    }

    /**
     * q and k's norms with RoPE in one pass (rmsnorm_rope_T) against the CPU's two ops, per head and over the whole
     * projection, at every head size the half-input attention takes; the 16-bit copy it writes for attention holds
     * the fp32 results rounded (compared bit for bit).
     */
    @Test
    void qkNormsWithRopeInOnePass() throws IOException {
        int t = 45;
        for (int hd : new int[] {64, 128, 256}) {
            for (int heads : new int[] {1, 4}) {
                int cols = heads * hd;
                for (int group : new int[] {hd, cols}) {
                    String what = "rmsNormRope, head dim " + hd + ", " + heads + " heads, norm groups of " + group;
                    Tensor[] x = act(randn(t * cols, 2), t, cols);
                    Tensor[] w = weight(randn(group, 1), 1, group);
                    int[] pos = random.ints(t, 0, 4000).toArray();
                    io.moescore.backend.ColumnBlocks blocks = io.moescore.backend.ColumnBlocks.heads(heads, hd);
                    io.moescore.model.Rope rope = io.moescore.model.Rope.plain(10000.0, hd);
                    cpu.rmsNormRope(x[0], w[0], group, 1e-6f, blocks, rope, cpu.ints(pos));
                    gpu.rmsNormRope(x[1], w[1], group, 1e-6f, blocks, rope, gpu.ints(pos));
                    assertClose(cpu, x[0], x[1], 1e-5, what);
                    assertTrue(((CudaTensor) x[1]).currentCopy() != null, what + ": no 16-bit copy for attention");
                    assertCopyIsTheRoundedValues(gpu, x[1], what);
                }
            }
        }
    }

    /**
     * The fused q/k/v product's column views (Backend.columns) through what reads them: q and k's norms with RoPE
     * (whole projection and per head), plain RoPE, and attention (v's 16-bit copy converted from a view) give the
     * same bits as separate tensors holding the same values; a write to the stacked activation makes v's copy stale.
     */
    @Test
    void columnViewsOfTheFusedProductMatchSeparateTensors() throws IOException {
        int[] offsets = {0, 70, 200, 333};
        int t = offsets[3];
        for (int[] cfg : new int[][] {{4, 2, 128, 1}, {8, 2, 64, 2}, {4, 4, 128, 0}}) {
            int h = cfg[0];
            int kvh = cfg[1];
            int hd = cfg[2];
            int norm = cfg[3];  // 0: none (plain RoPE), 1: over the whole projection, 2: per head
            int qd = h * hd;
            int kd = kvh * hd;
            int width = qd + 2 * kd;
            String what = "views h" + h + " kv" + kvh + " d" + hd + " norm " + norm;
            float[] all = randn(t * width, 1);
            float[][] parts = {new float[t * qd], new float[t * kd], new float[t * kd]};
            int[] from = {0, qd, qd + kd};
            int[] cols = {qd, kd, kd};
            for (int r = 0; r < t; r++) {
                for (int p = 0; p < 3; p++) {
                    System.arraycopy(all, r * width + from[p], parts[p], r * cols[p], cols[p]);
                }
            }
            Tensor stacked = gpu.activation(all, t, width);
            Tensor[] views = gpu.columns(stacked, qd, kd, kd);
            Tensor[] separate = {gpu.activation(parts[0], t, qd), gpu.activation(parts[1], t, kd),
                gpu.activation(parts[2], t, kd)};
            int[] pos = random.ints(t, 0, 4000).toArray();
            io.moescore.model.Rope rope = io.moescore.model.Rope.plain(10000.0, hd);
            for (int p = 0; p < 2; p++) {
                io.moescore.backend.ColumnBlocks heads = io.moescore.backend.ColumnBlocks.heads(cols[p] / hd, hd);
                for (Tensor x : new Tensor[] {views[p], separate[p]}) {
                    if (norm == 0) {
                        gpu.rope(x, heads, rope, gpu.ints(pos));
                    } else {
                        int group = norm == 1 ? cols[p] : hd;
                        Tensor w = gpu.activation(java.util.Arrays.copyOf(parts[2], group), 1, group);
                        gpu.rmsNormRope(x, w, group, 1e-6f, heads, rope, gpu.ints(pos));
                    }
                }
            }
            Tensor[] out = {gpu.activation(t, qd), gpu.activation(t, qd)};
            gpu.attention(views[0], views[1], views[2], gpu.ints(offsets), h, kvh, hd, 0, out[0]);
            gpu.attention(separate[0], separate[1], separate[2], gpu.ints(offsets), h, kvh, hd, 0, out[1]);
            assertArrayEquals(gpu.toHost(out[1]), gpu.toHost(out[0]), what + ": attention over the views");
            float[] back = gpu.toHost(stacked);
            for (int p = 0; p < 3; p++) {
                float[] expected = gpu.toHost(separate[p]);
                for (int r = 0; r < t; r++) {
                    for (int c = 0; c < cols[p]; c++) {
                        if (Float.compare(back[r * width + from[p] + c], expected[r * cols[p] + c]) != 0) {
                            throw new AssertionError(what + ": block " + p + " at row " + r + ", column " + c + " is "
                                    + back[r * width + from[p] + c] + ", separately " + expected[r * cols[p] + c]);
                        }
                    }
                }
            }
            // the next layer's product writes the stacked activation: v's copy must be made again from it
            float[] next = randn(t * width, 1);
            Tensor fresh = gpu.activation(next, t, width);
            gpu.linear(fresh, weight(eye(width), width, width)[1], null, stacked);
            assertTrue(((CudaTensor) views[2]).currentCopy() == null, what + ": v's copy survived a write of its "
                    + "activation");
            for (Tensor x : views) {
                x.close();
            }
            stacked.close();
        }
    }

    static float[] eye(int n) {
        float[] out = new float[n * n];
        for (int i = 0; i < n; i++) {
            out[i * n + i] = 1f;
        }
        return out;
    }

    /** A bf16 backend's 16-bit copy of a tensor holds its fp32 values rounded to bf16, bit for bit. */
    /**
     * The ForAttention forms of RoPE and of the q/k norms with RoPE write only the 16-bit copy attention reads: the
     * same bits as the full op's copy; the fp32 values are then refused by name (toHost, an in-place op) until a
     * write defines them again.
     */
    @Test
    void ropeForAttentionWritesOnlyTheCopy() throws IOException {
        int t = 45;
        int hd = 128;
        int heads = 4;
        int cols = heads * hd;
        float[] values = randn(t * cols, 2);
        Tensor[] w = weight(randn(hd, 1), 1, hd);
        int[] pos = random.ints(t, 0, 4000).toArray();
        io.moescore.backend.ColumnBlocks blocks = io.moescore.backend.ColumnBlocks.heads(heads, hd);
        io.moescore.model.Rope rope = io.moescore.model.Rope.plain(10000.0, hd);
        for (boolean norm : new boolean[] {false, true}) {
            String what = norm ? "rmsNormRopeForAttention" : "ropeForAttention";
            try (Tensor full = gpu.activation(values, t, cols);
                 Tensor copyOnly = gpu.activation(values, t, cols)) {
                if (norm) {
                    gpu.rmsNormRope(full, w[1], hd, 1e-6f, blocks, rope, gpu.ints(pos));
                    gpu.rmsNormRopeForAttention(copyOnly, w[1], hd, 1e-6f, blocks, rope, gpu.ints(pos));
                } else {
                    gpu.rope(full, blocks, rope, gpu.ints(pos));
                    gpu.ropeForAttention(copyOnly, blocks, rope, gpu.ints(pos));
                }
                short[] a = new short[t * cols];
                short[] b = new short[t * cols];
                jcuda.driver.JCudaDriver.cuMemcpyDtoH(jcuda.Pointer.to(a), ((CudaTensor) full).currentCopy(), a.length * 2L);
                jcuda.driver.JCudaDriver.cuMemcpyDtoH(jcuda.Pointer.to(b), ((CudaTensor) copyOnly).currentCopy(), b.length * 2L);
                assertArrayEquals(a, b, what + ": the copy differs from the full op's");
                IllegalStateException e = assertThrows(IllegalStateException.class,
                        () -> gpu.toHost(copyOnly));
                assertTrue(e.getMessage().contains("toHost") && e.getMessage().contains("16-bit copy"), e.getMessage());
                assertThrows(IllegalStateException.class,
                        () -> gpu.ropeForAttention(copyOnly, blocks, rope, gpu.ints(pos)));
                gpu.linear(gpu.activation(values, t, cols), weight(bf16(randn(cols * cols, 0.05)), cols, cols)[1], null,
                        copyOnly);  // a product writes it whole: its values are defined again
                assertEquals(t * cols, gpu.toHost(copyOnly).length);
            }
        }
    }

    /**
     * GLM-4.5's partial rotary (the first rotaryDim columns of each head), DeepSeek's interleaved pairs and YaRN's
     * frequencies and attention factor against the CPU's rope; the 16-bit copy attention reads holds the whole row
     * (the columns past rotaryDim as they are), and the ForAttention form writes the same copy bit for bit.
     */
    @Test
    void partialInterleavedAndYarnRopeMatchTheCpu() throws IOException {
        int t = 61;
        int heads = 3;
        io.moescore.model.Rope.Yarn yarn = new io.moescore.model.Rope.Yarn(40, 4096, 32, 1, 1.3, true);
        for (int hd : new int[] {64, 128, 40}) {  // 40: no half-input attention there, the fp32 kernel alone
            int cols = heads * hd;
            for (int rot : new int[] {hd, hd / 2, 8}) {
                for (io.moescore.model.Rope rope : new io.moescore.model.Rope[] {
                    new io.moescore.model.Rope(10000.0, rot, false, null),
                    new io.moescore.model.Rope(10000.0, rot, true, null),
                    new io.moescore.model.Rope(500000.0, rot, false, yarn)}) {
                    String what = "rope " + rope.describe() + " of heads of " + hd;
                    io.moescore.backend.ColumnBlocks blocks = new io.moescore.backend.ColumnBlocks(0, hd, heads, rot);
                    float[] values = randn(t * cols, 2);
                    int[] pos = random.ints(t, 0, 60000).toArray();
                    Tensor want = cpu.activation(values, t, cols);
                    cpu.rope(want, blocks, rope, cpu.ints(pos));
                    try (Tensor full = gpu.activation(values, t, cols);
                         Tensor copyOnly = gpu.activation(values, t, cols)) {
                        gpu.rope(full, blocks, rope, gpu.ints(pos));
                        assertClose(cpu, want, full, 2e-5, what);
                        if (((CudaTensor) full).currentCopy() == null) {
                            continue;  // no half-input attention at this head size: no copy written
                        }
                        assertCopyIsTheRoundedValues(gpu, full, what);
                        gpu.ropeForAttention(copyOnly, blocks, rope, gpu.ints(pos));
                        short[] a = new short[t * cols];
                        short[] b = new short[t * cols];
                        jcuda.driver.JCudaDriver.cuMemcpyDtoH(jcuda.Pointer.to(a), ((CudaTensor) full).currentCopy(),
                                a.length * 2L);
                        jcuda.driver.JCudaDriver.cuMemcpyDtoH(jcuda.Pointer.to(b),
                                ((CudaTensor) copyOnly).currentCopy(), b.length * 2L);
                        assertArrayEquals(a, b, what + ": ropeForAttention's copy differs from the full op's");
                    }
                }
            }
        }
    }

    static void assertCopyIsTheRoundedValues(CudaBackend backend, Tensor t, String what) {
        assertEquals(Precision.BF16, backend.precision(), "the copy check rounds to bf16");
        CudaTensor g = (CudaTensor) t;
        short[] copy = new short[t.rows() * t.cols()];
        jcuda.driver.JCudaDriver.cuMemcpyDtoH(jcuda.Pointer.to(copy), g.currentCopy(), copy.length * 2L);
        float[] values = backend.toHost(t);
        short[] rounded = CudaWeights.toBf16(values);
        for (int i = 0; i < copy.length; i++) {
            if (copy[i] != rounded[i]) {
                throw new AssertionError(what + ": 16-bit copy at row " + i / t.cols() + ", column " + i % t.cols()
                        + " is " + copy[i] + ", the fp32 value rounds to " + rounded[i]);
            }
        }
    }

    @Test
    void normsRopeClampAddGate() throws IOException {
        int t = 77;
        int heads = 4;
        int hd = 32;
        int cols = heads * hd;
        Tensor[] x = act(randn(t * cols, 2), t, cols);
        Tensor[] w = weight(randn(cols, 1), 1, cols);
        Tensor[] wh = weight(randn(hd, 1), 1, hd);
        Tensor[] out = poisoned(t, cols);
        cpu.rmsNorm(x[0], w[0], cols, 1e-6f, out[0]);
        gpu.rmsNorm(x[1], w[1], cols, 1e-6f, out[1]);
        assertClose(cpu, out[0], out[1], 1e-5, "rmsnorm rows");
        cpu.rmsNorm(x[0], wh[0], hd, 1e-6f, x[0]);
        gpu.rmsNorm(x[1], wh[1], hd, 1e-6f, x[1]);
        assertClose(cpu, x[0], x[1], 1e-5, "rmsnorm per head, in place");
        int[] pos = new int[t];
        for (int i = 0; i < t; i++) {
            pos[i] = random.nextInt(4000);
        }
        IntTensor pc = cpu.ints(pos);
        IntTensor pg = gpu.ints(pos);
        cpu.rope(x[0], hd, pc, 500000.0);
        gpu.rope(x[1], hd, pg, 500000.0);
        assertClose(cpu, x[0], x[1], 1e-5, "rope");
        cpu.clamp(x[0], 0.5f);
        gpu.clamp(x[1], 0.5f);
        assertClose(cpu, x[0], x[1], 1e-6, "clamp (after rope)");
        Tensor[] y = act(randn(t * cols, 1), t, cols);
        Tensor[] g = act(randn(t, 2), t, 1);
        cpu.addSigmoidGated(x[0], y[0], g[0]);
        gpu.addSigmoidGated(x[1], y[1], g[1]);
        assertClose(cpu, x[0], x[1], 1e-6, "add sigmoid gated");
        cpu.addInPlace(x[0], y[0]);
        gpu.addInPlace(x[1], y[1]);
        assertClose(cpu, x[0], x[1], 1e-6, "add");
        Tensor[] table = weight(bf16(randn(50 * cols, 1)), 50, cols);
        int[] ids = random.ints(t, 0, 50).toArray();
        Tensor[] e = poisoned(t, cols);
        cpu.embed(table[0], cpu.ints(ids), e[0]);
        gpu.embed(table[1], gpu.ints(ids), e[1]);
        assertClose(cpu, e[0], e[1], 0, "embedding");
    }

    /**
     * The fused residual add + RMSNorm (elementwise.cu, rmsnorm_rows_T) against the CPU's add then norm, at a width
     * read 16 bytes at a time and ones that are not; the normed activation's 16-bit copy is exactly what a product
     * would have converted from its fp32 values (a linear layer reading either gives the same bits) until an op
     * writes the fp32 values alone, which leaves the copy stale (the product converts again).
     */
    @Test
    void fusedAddNormFeedsTheProductsTheSameBits() throws IOException {
        for (int cols : new int[] {2048, 136, 130}) {
            int t = 67;
            Tensor[] x = act(randn(t * cols, 2), t, cols);
            Tensor[] delta = act(randn(t * cols, 1), t, cols);
            Tensor[] w = weight(randn(cols, 1), 1, cols);
            Tensor cpuOut = cpu.activation(t, cols);
            cpu.addRmsNorm(x[0], delta[0], w[0], 1e-6f, cpuOut);
            try (Tensor normed = gpu.normedActivation(t, cols)) {
                gpu.addRmsNorm(x[1], delta[1], w[1], 1e-6f, normed);
                assertClose(cpu, x[0], x[1], 1e-6, "residual after the fused add, " + cols + " columns");
                assertClose(cpu, cpuOut, normed, 1e-5, "fused add + rmsnorm, " + cols + " columns");
                gpu.rmsNorm(x[1], w[1], cols, 1e-6f, normed);
                cpu.rmsNorm(x[0], w[0], cols, 1e-6f, cpuOut);
                assertClose(cpu, cpuOut, normed, 1e-5, "rmsnorm into a normed activation, " + cols + " columns");
                if (cols % 8 == 0) {  // per-head groups (Qwen3's q/k norm) in place: fp32 only, the copy goes stale
                    Tensor[] wh = weight(randn(8, 1), 1, 8);
                    cpu.rmsNorm(cpuOut, wh[0], 8, 1e-6f, cpuOut);
                    gpu.rmsNorm(normed, wh[1], 8, 1e-6f, normed);
                    assertClose(cpu, cpuOut, normed, 1e-5, "per-group rmsnorm in place, " + cols + " columns");
                }
                if (cols % 8 != 0) {
                    continue;  // the tensor-core products need inner dimensions of multiples of 8
                }
                gpu.rmsNorm(x[1], w[1], cols, 1e-6f, normed);  // whole rows again: the copy is current
                // 300 rows: above the small-weight rows that multiply in fp32, so the product reads the copy
                Tensor[] lw = weight(bf16(randn(300 * cols, 1.0 / Math.sqrt(cols))), 300, cols);
                try (Tensor plain = gpu.activation(gpu.toHost(normed), t, cols);
                     Tensor viaCopy = gpu.activation(t, 300);
                     Tensor viaConversion = gpu.activation(t, 300)) {
                    gpu.linear(normed, lw[1], null, viaCopy);
                    gpu.linear(plain, lw[1], null, viaConversion);
                    assertArrayEquals(gpu.toHost(viaConversion), gpu.toHost(viaCopy),
                            "a linear layer reading the norm's 16-bit copy vs converting its fp32 values");
                    gpu.addInPlace(normed, plain);  // fp32 only: the copy is stale, the product converts
                    try (Tensor doubled = gpu.activation(gpu.toHost(normed), t, cols)) {
                        gpu.linear(normed, lw[1], null, viaCopy);
                        gpu.linear(doubled, lw[1], null, viaConversion);
                        assertArrayEquals(gpu.toHost(viaConversion), gpu.toHost(viaCopy),
                                "a linear layer after the normed activation was written in fp32 only");
                    }
                }
            }
        }
    }

    /**
     * addRmsNormForProducts (Backend: out read next only by matrix products) writes the residual and the 16-bit copy
     * alone: a linear layer reading it gives the same bits as after the full op, and a read of its fp32 values
     * (toHost, a one-row gate's fp32 product) is refused, naming the op, until an op writes them again.
     */
    @Test
    void normForProductsKeepsOnlyTheCopy() throws IOException {
        int t = 67;
        int cols = 2048;
        Tensor[] w = weight(randn(cols, 1), 1, cols);
        Tensor[] lw = weight(bf16(randn(300 * cols, 1.0 / Math.sqrt(cols))), 300, cols);
        Tensor[] gate = weight(randn(cols, 1.0 / Math.sqrt(cols)), 1, cols);
        float[] x0 = randn(t * cols, 2);
        float[] d0 = randn(t * cols, 1);
        try (Tensor xFull = gpu.activation(x0, t, cols);
             Tensor xProducts = gpu.activation(x0, t, cols);
             Tensor delta = gpu.activation(d0, t, cols);
             Tensor full = gpu.normedActivation(t, cols);
             Tensor products = gpu.normedActivation(t, cols);
             Tensor a = gpu.activation(t, 300);
             Tensor b = gpu.activation(t, 300);
             Tensor gateOut = gpu.activation(t, 1)) {
            gpu.addRmsNorm(xFull, delta, w[1], 1e-6f, full);
            gpu.addRmsNormForProducts(xProducts, delta, w[1], 1e-6f, products);
            assertArrayEquals(gpu.toHost(xFull), gpu.toHost(xProducts), "the residual stream, written alike");
            gpu.linear(full, lw[1], null, a);
            gpu.linear(products, lw[1], null, b);
            assertArrayEquals(gpu.toHost(a), gpu.toHost(b), "a linear layer after the norm for products alone");
            IllegalStateException refused = assertThrows(IllegalStateException.class,
                    () -> gpu.toHost(products));
            assertTrue(refused.getMessage().contains("16-bit copy"), refused.getMessage());
            refused = assertThrows(IllegalStateException.class,
                    () -> gpu.linear(products, gate[1], null, gateOut));
            assertTrue(refused.getMessage().contains("linear"), refused.getMessage());
            gpu.rmsNorm(xProducts, w[1], cols, 1e-6f, products);  // the full op defines the fp32 values again
            assertArrayEquals(gpu.toHost(full), gpu.toHost(products), "the norm's fp32 values once written again");
        }
    }

    /**
     * A router-sized weight (few rows, fp32 copy kept) multiplies the norm's 16-bit copy on the tensor cores where the
     * input has one (bf16 / fp16: as transformers' own run at that precision routes): the result equals the CPU's
     * product of the rounded normed rows (fp32 sums in another order), not the fp32 rows'; an input without a copy
     * still takes the fp32 product (linear_small_f32).
     */
    @Test
    void smallWeightsReadTheNormsCopyWhereThereIsOne() throws IOException {
        int t = 77;
        int cols = 256;
        for (int rows : new int[] {8, 64}) {
            Tensor[] x = act(randn(t * cols, 2), t, cols);
            Tensor[] w = weight(randn(cols, 1), 1, cols);
            Tensor[] router = weight(bf16(randn(rows * cols, 2.0 / Math.sqrt(cols))), rows, cols);
            Tensor cpuNormed = cpu.activation(t, cols);
            cpu.rmsNorm(x[0], w[0], cols, 1e-6f, cpuNormed);
            float[] rounded = bf16(cpu.toHost(cpuNormed));
            Tensor cpuOfRounded = cpu.activation(t, rows);
            Tensor cpuOfFp32 = cpu.activation(t, rows);
            try (Tensor roundedIn = cpu.activation(rounded, t, cols)) {
                cpu.linear(roundedIn, router[0], null, cpuOfRounded);
            }
            cpu.linear(cpuNormed, router[0], null, cpuOfFp32);
            try (Tensor normed = gpu.normedActivation(t, cols);
                 Tensor logits = gpu.activation(t, rows)) {
                gpu.rmsNorm(x[1], w[1], cols, 1e-6f, normed);
                gpu.linear(normed, router[1], null, logits);
                assertClose(cpu, cpuOfRounded, logits, 1e-4, "router " + rows + " rows on the norm's copy");
                float[] got = gpu.toHost(logits);
                double fromRounded = maxDifference(cpu.toHost(cpuOfRounded), got);
                double fromFp32 = maxDifference(cpu.toHost(cpuOfFp32), got);
                // the GPU's normed values may round to the other bf16 neighbour where the CPU's differ in the last
                // fp32 bit, so "nearer the rounded rows' product" is the test (measured on an H100: 5.1x at 8 rows)
                assertTrue(fromFp32 > 2 * fromRounded, "router " + rows + " rows: " + fromRounded + " from the "
                        + "product of the rounded rows, " + fromFp32 + " from the fp32 rows': not read from the copy");
                Tensor[] plain = act(cpu.toHost(cpuNormed), t, cols);
                try (Tensor fp32 = gpu.activation(t, rows)) {
                    gpu.linear(plain[1], router[1], null, fp32);
                    assertClose(cpu, cpuOfFp32, fp32, 1e-5, "router " + rows + " rows on fp32 rows");
                }
            }
        }
    }

    /** bf16: the half-input kernel at head_dim 64, 128 and 256 (bf16 copies of q, k, v; p rounded to bf16), the
     * tensor-core kernel with fp32 inputs at the other sizes up to 128, fp32 beyond; split-bf16: the fp32 kernel
     * always. */
    @Test
    void attentionOverPackedSequencesWithGqaAndWindow() {
        attentionAgainstCpu(gpu);
        attentionAgainstCpu(new CudaBackend(CudaOptions.device(0).withPrecision(Precision.SPLIT_BF16)));
    }

    /** @return the largest relative error */
    double attentionAgainstCpu(CudaBackend gpu) {
        double worst = 0;
        int[] lengths = {1, 5, 64, 65, 200, 31, 513};
        int[] offsets = new int[lengths.length + 1];
        for (int i = 0; i < lengths.length; i++) {
            offsets[i + 1] = offsets[i] + lengths[i];
        }
        int t = offsets[lengths.length];
        for (int[] cfg : new int[][] {{8, 2, 64, 0}, {4, 4, 128, 0}, {6, 2, 32, 17}, {2, 1, 256, 0}, {4, 2, 24, 0},
            {4, 2, 96, 100}, {2, 2, 16, 0}, {8, 1, 128, 100}, {8, 2, 64, 130}, {4, 1, 256, 70}}) {
            int h = cfg[0];
            int kv = cfg[1];
            int hd = cfg[2];
            int window = cfg[3];
            Tensor[] q = act(randn(t * h * hd, 1), t, h * hd);
            Tensor[] k = act(randn(t * kv * hd, 1), t, kv * hd);
            Tensor[] v = act(randn(t * kv * hd, 1), t, kv * hd);
            Tensor[] out = poisoned(t, h * hd);
            cpu.attention(q[0], k[0], v[0], cpu.ints(offsets), h, kv, hd, window, out[0]);
            gpu.attention(q[1], k[1], v[1], gpu.ints(offsets), h, kv, hd, window, out[1]);
            boolean tensorCores = gpu.attentionKernel(hd).type() != null;
            String what = gpu.precision().userName() + " attention h" + h + " kv" + kv + " d" + hd + " w" + window;
            worst = Math.max(worst, assertClose(cpu, out[0], out[1], tensorCores ? 1e-2 : 1e-5, what));
            if (((CudaTensor) out[1]).currentCopy() != null && gpu.precision() == Precision.BF16) {
                // the half-input kernels write the o projection's input too
                assertCopyIsTheRoundedValues(gpu, out[1], what);
            }
        }
        return worst;
    }

    /**
     * DeepSeek's latent attention on the GPU, piece by piece against the CPU: column copies (a split, a join into
     * parts of heads, a stride-0 broadcast of the shared rotary key, the untouched columns kept), RoPE of the last
     * columns of each head (interleaved YaRN, through a copy), and attention with q/k heads of 192 and v heads of 128
     * under MLA's own scale (through heads padded to one width), bf16 and split-bf16, with a window.
     */
    @Test
    void latentAttentionPiecesMatchTheCpu() {
        int t = 97;
        int n = 4;
        int nope = 128;
        int ropeDim = 64;
        int qk = nope + ropeDim;
        float[] src = randn(t * 3 * 40, 1);
        float[] base = randn(t * n * 48, 1);
        io.moescore.backend.ColumnBlocks[][] copies = {
            {io.moescore.backend.ColumnBlocks.span(40, 40), io.moescore.backend.ColumnBlocks.span(0, 40)},
            {new io.moescore.backend.ColumnBlocks(0, 40, 3, 16), new io.moescore.backend.ColumnBlocks(32, 48, 3, 16)},
            {new io.moescore.backend.ColumnBlocks(80, 0, 4, 8), new io.moescore.backend.ColumnBlocks(40, 48, 4, 8)}};
        for (io.moescore.backend.ColumnBlocks[] c : copies) {
            Tensor want = cpu.activation(base, t, n * 48);
            cpu.copyColumns(cpu.activation(src, t, 120), c[0], want, c[1]);
            try (Tensor s = gpu.activation(src, t, 120); Tensor got = gpu.activation(base, t, n * 48)) {
                gpu.copyColumns(s, c[0], got, c[1]);
                assertArrayEquals(cpu.toHost(want), gpu.toHost(got), "copyColumns " + c[0] + " -> " + c[1]);
            }
        }
        io.moescore.model.Rope.Yarn yarn = new io.moescore.model.Rope.Yarn(40, 4096, 32, 1, 1.3, true);
        io.moescore.model.Rope rope = new io.moescore.model.Rope(10000.0, ropeDim, true, yarn);
        io.moescore.backend.ColumnBlocks qRope = new io.moescore.backend.ColumnBlocks(nope, qk, n, ropeDim);
        float[] qValues = randn(t * n * qk, 1);
        int[] pos = random.ints(t, 0, 60000).toArray();
        Tensor qWant = cpu.activation(qValues, t, n * qk);
        cpu.rope(qWant, qRope, rope, cpu.ints(pos));
        try (Tensor qGot = gpu.activation(qValues, t, n * qk)) {
            gpu.rope(qGot, qRope, rope, gpu.ints(pos));
            assertClose(cpu, qWant, qGot, 2e-5, "rope of the last " + ropeDim + " columns of heads of " + qk);
        }
        int[] offsets = {0, 1, 40, t};
        double scale = 0.9 / Math.sqrt(qk);  // MLA's scale: 1/sqrt(q/k width) times YaRN's mscale^2
        io.moescore.backend.AttentionHeads heads = new io.moescore.backend.AttentionHeads(n, n, qk, nope, scale);
        for (CudaBackend backend : new CudaBackend[] {gpu,
            new CudaBackend(CudaOptions.device(0).withPrecision(Precision.SPLIT_BF16))}) {
            for (int window : new int[] {0, 17}) {
                float[] q = randn(t * n * qk, 1);
                float[] k = randn(t * n * qk, 1);
                float[] v = randn(t * n * nope, 1);
                Tensor want = cpu.activation(t, n * nope);
                cpu.attention(cpu.activation(q, t, n * qk), cpu.activation(k, t, n * qk), cpu.activation(v, t, n * nope),
                        cpu.ints(offsets), heads, window, want);
                float[] nan = new float[t * n * nope];
                java.util.Arrays.fill(nan, Float.NaN);
                try (Tensor got = backend.activation(nan, t, n * nope)) {
                    backend.attention(backend.activation(q, t, n * qk), backend.activation(k, t, n * qk),
                            backend.activation(v, t, n * nope), backend.ints(offsets), heads, window, got);
                    assertClose(cpu, want, got, backend.precision() == Precision.SPLIT_BF16 ? 1e-5 : 1e-2,
                            backend.precision().userName() + " latent attention q/k " + qk + ", v " + nope
                                    + ", window " + window);
                }
            }
        }
    }

    @Test
    void routerExpertsAndDenseFfn() throws IOException {
        expertsAgainstCpu(gpu);
    }

    /** Deterministic mode's expert combine (per-entry outputs summed in expert order, no atomics), dense and 2:4. */
    @Test
    void deterministicExpertCombineMatchesTheCpu() throws IOException {
        CudaBackend deterministic = new CudaBackend(CudaOptions.device(0).withDeterministic(true));
        expertsAgainstCpu(deterministic);
        sparseExpertsAgainstCpu(deterministic);
    }

    /** @return the largest relative error of the grouped experts */
    double expertsAgainstCpu(CudaBackend gpu) throws IOException {
        double worst = 0;
        for (int[] cfg : new int[][] {{300, 64, 48, 8, 2}, {1000, 128, 96, 60, 4}, {17, 64, 32, 8, 8}, {2, 64, 16, 4, 1},
            {3000, 256, 512, 8, 2}}) {
            int t = cfg[0];
            int hidden = cfg[1];
            int ffn = cfg[2];
            int experts = cfg[3];
            int k = cfg[4];
            Tensor[] logits = act(randn(t * experts, 2), t, experts);
            TopKSoftmaxRouter router = new TopKSoftmaxRouter(k, k > 1);
            ExpertRouting rc = cpu.route(logits[0], router);
            ExpertRouting rg = gpu.route(logits[1], router);
            assertArrayEquals(rc.tokensPerExpert(), rg.tokensPerExpert(), "tokens per expert");
            WeightSlice[][] slices = new WeightSlice[3][experts];
            Path file = dir.resolve("experts" + (files++));
            java.nio.file.Files.createDirectories(file);
            SafeTensorsWriter writer = new SafeTensorsWriter(java.util.Map.of());
            for (int e = 0; e < experts; e++) {
                writer.add("g" + e, DType.F32, bf16(randn(ffn * hidden, 1 / Math.sqrt(hidden))), ffn, hidden);
                writer.add("u" + e, DType.F32, bf16(randn(ffn * hidden, 1 / Math.sqrt(hidden))), ffn, hidden);
                writer.add("d" + e, DType.F32, bf16(randn(hidden * ffn, 1 / Math.sqrt(ffn))), hidden, ffn);
            }
            writer.write(file.resolve("model.safetensors"));
            try (Checkpoint c = Checkpoint.open(file)) {
                for (int e = 0; e < experts; e++) {
                    slices[0][e] = WeightSlice.whole(c.get("g" + e), ffn, hidden);
                    slices[1][e] = WeightSlice.whole(c.get("u" + e), ffn, hidden);
                    slices[2][e] = WeightSlice.whole(c.get("d" + e), hidden, ffn);
                }
                ExpertWeights wc = cpu.expertWeights(slices[0], slices[1], slices[2]);
                ExpertWeights wg = gpu.expertWeights(slices[0], slices[1], slices[2]);
                Tensor[] x = act(randn(t * hidden, 1), t, hidden);
                Tensor[] out = poisoned(t, hidden);
                cpu.experts(x[0], rc, wc, out[0]);
                gpu.experts(x[1], rg, wg, out[1]);
                worst = Math.max(worst, assertClose(cpu, out[0], out[1], 1e-2, gpu.precision().userName() + " "
                        + gpu.gemmPath() + " experts t" + t + " e" + experts + " k" + k));
                ExpertWeights dc = cpu.expertWeights(new WeightSlice[] {slices[0][0]}, new WeightSlice[] {slices[1][0]},
                        new WeightSlice[] {slices[2][0]});
                ExpertWeights dg = gpu.expertWeights(new WeightSlice[] {slices[0][0]}, new WeightSlice[] {slices[1][0]},
                        new WeightSlice[] {slices[2][0]});
                Tensor[] dense = poisoned(t, hidden);
                cpu.ffn(x[0], dc, dense[0]);
                gpu.ffn(x[1], dg, dense[1]);
                assertClose(cpu, dense[0], dense[1], 1e-2, "dense ffn t" + t);
                wg.close();
                dg.close();
            }
            rg.close();
        }
        return worst;
    }

    @Test
    void sparseExpertsMatchTheCpuOnTheSameTwoFourWeights() {
        sparseExpertsAgainstCpu(gpu);
    }

    /**
     * Samoyeds' 128:2:8 experts (vnm_sm90.cu on a Hopper: each condensed row adds into the row of its pair that the
     * slice keeps) in both precisions and with the deterministic combine, against the CPU on the decompressed
     * weights. Random magnitudes make every slice's row choice a coin toss, so a kernel that ignored or misplaced
     * one would be off by whole rows.
     */
    @Test
    void vectorSparseExpertsMatchTheCpu() {
        System.out.println("128:2:8 experts on " + (gpu.sparsePath().startsWith("wgmma") ? "vnm_sm90" : "the 2:4 kernels"));
        sparseExpertsAgainstCpu(gpu, true);
        sparseExpertsAgainstCpu(new CudaBackend(CudaOptions.device(0).withPrecision(Precision.FP16)), true);
        sparseExpertsAgainstCpu(new CudaBackend(CudaOptions.device(0).withDeterministic(true)), true);
        sparseExpertsAgainstCpu(new CudaBackend(CudaOptions.device(0).withKernels(Kernels.MMA_SYNC)), true);
    }

    double sparseExpertsAgainstCpu(CudaBackend gpu) {
        return sparseExpertsAgainstCpu(gpu, false);
    }

    /** @return the largest relative error of 2:4 experts (or, with vectorSparse, 128:2:8 ones) */
    double sparseExpertsAgainstCpu(CudaBackend gpu, boolean vectorSparse) {
        double worst = 0;
        for (int[] cfg : new int[][] {{300, 64, 96, 8, 2}, {1000, 128, 64, 16, 4}, {5, 64, 32, 4, 1},
            {3000, 256, 416, 8, 2}, {700, 160, 288, 4, 2}, {2000, 640, 256, 8, 2}}) {
            int t = cfg[0];
            int hidden = cfg[1];
            int ffn = cfg[2];
            int experts = cfg[3];
            int k = cfg[4];
            int[][] dims = {{ffn, hidden}, {ffn, hidden}, {hidden, ffn}};
            ExpertWeights wc;
            ExpertWeights wg;
            if (vectorSparse) {
                VectorSparse.Packed[][] packed = new VectorSparse.Packed[3][experts];
                for (int w = 0; w < 3; w++) {
                    for (int e = 0; e < experts; e++) {
                        float[] dense = bf16(randn(dims[w][0] * dims[w][1], 1 / Math.sqrt(dims[w][1])));
                        packed[w][e] = VectorSparse.pack(VectorSparse.pruneMagnitude(dense, dims[w][0], dims[w][1]),
                                dims[w][0], dims[w][1]);
                    }
                }
                wc = cpu.vectorSparseExpertWeights(packed[0], packed[1], packed[2]);
                wg = gpu.vectorSparseExpertWeights(packed[0], packed[1], packed[2]);
            } else {
                Sparse24.Packed[][] packed = new Sparse24.Packed[3][experts];
                for (int w = 0; w < 3; w++) {
                    for (int e = 0; e < experts; e++) {
                        float[] dense = bf16(randn(dims[w][0] * dims[w][1], 1 / Math.sqrt(dims[w][1])));
                        packed[w][e] = Sparse24.pack(Sparse24.pruneMagnitude(dense, dims[w][0], dims[w][1]),
                                dims[w][0], dims[w][1]);
                    }
                }
                wc = cpu.sparseExpertWeights(packed[0], packed[1], packed[2]);
                wg = gpu.sparseExpertWeights(packed[0], packed[1], packed[2]);
            }
            Tensor[] logits = act(randn(t * experts, 2), t, experts);
            TopKSoftmaxRouter router = new TopKSoftmaxRouter(k, true);
            ExpertRouting rc = cpu.route(logits[0], router);
            ExpertRouting rg = gpu.route(logits[1], router);
            Tensor[] x = act(randn(t * hidden, 1), t, hidden);
            Tensor[] out = poisoned(t, hidden);
            cpu.experts(x[0], rc, wc, out[0]);
            gpu.experts(x[1], rg, wg, out[1]);
            worst = Math.max(worst, assertClose(cpu, out[0], out[1], 1e-2, gpu.precision().userName() + " "
                    + gpu.sparsePath() + (vectorSparse ? " 128:2:8" : " 2:4") + " experts t" + t + " e" + experts
                    + " k" + k + " h" + hidden + " f" + ffn));
            wg.close();
            rg.close();
        }
        return worst;
    }

    /**
     * fp16 precision on every kernel family this GPU has (linear, dense and 2:4 experts, attention) against the fp32
     * CPU, and on weights both types hold exactly, at least 3x more accurate than bf16 (11 significant bits of each
     * GEMM input against 8 predict 8x; measured 4.6-15x on an H100): a kernel that multiplied in bf16, or read fp16
     * bits as bf16, fails this.
     */
    @Test
    void fp16IsAccurateOnEveryKernelFamily() throws IOException {
        for (Kernels k : pinnableFamilies()) {
            CudaBackend bf16 = new CudaBackend(CudaOptions.device(0).withKernels(k));
            CudaBackend fp16 = new CudaBackend(CudaOptions.device(0).withPrecision(Precision.FP16).withKernels(k));
            assertFp16Closer("linear, " + k, linearAgainstCpu(fp16), linearAgainstCpu(bf16));
            assertFp16Closer("experts, " + k, expertsAgainstCpu(fp16), expertsAgainstCpu(bf16));
            assertFp16Closer("2:4 experts, " + k, sparseExpertsAgainstCpu(fp16), sparseExpertsAgainstCpu(bf16));
        }
        CudaBackend fp16 = new CudaBackend(CudaOptions.device(0).withPrecision(Precision.FP16));
        assertFp16Closer("attention", attentionAgainstCpu(fp16), attentionAgainstCpu(gpu));

        int t = 300;
        int h = 64;
        int vocab = 5000;
        Tensor[] w = weight(bf16(randn(vocab * h, 2 / Math.sqrt(h))), vocab, h, fp16);
        int[] ids = random.ints(t, 0, vocab).toArray();
        Tensor[] rows = poisoned(t, h);
        cpu.embed(w[0], cpu.ints(ids), rows[0]);
        fp16.embed(w[1], fp16.ints(ids), rows[1]);
        assertClose(cpu, rows[0], rows[1], 1e-3, "fp16 embedding rows");
        Tensor[] x = act(randn(t * h, 1), t, h);
        int[] targets = random.ints(t, 0, vocab).toArray();
        LogProbs c = cpu.logProbs(x[0], w[0], cpu.ints(targets), new int[] {0, t - 1}, 5);
        LogProbs g = fp16.logProbs(x[1], w[1], fp16.ints(targets), new int[] {0, t - 1}, 5);
        assertLogProbsClose(c.targetLogProbs(), g.targetLogProbs(), t, 5e-3, "fp16 log-probs");
    }

    void assertFp16Closer(String what, double fp16Error, double bf16Error) {
        System.out.printf("%s: fp16 %.2e, bf16 %.2e (x%.1f)%n", what, fp16Error, bf16Error, bf16Error / fp16Error);
        assertTrue(fp16Error * 3 < bf16Error, what + ": fp16 error " + fp16Error + " is not well below bf16's "
                + bf16Error + " (seed " + SEED + ")");
    }

    /**
     * fp16's range: a weight beyond +-65504 is refused at load, naming the tensor; a GEMM input beyond it saturates
     * instead of becoming infinite, so the other rows of the batch, and that row, stay finite.
     */
    @Test
    void fp16RefusesWeightsBeyondItsRangeAndSaturatesInputs() throws IOException {
        CudaBackend fp16 = new CudaBackend(CudaOptions.device(0).withPrecision(Precision.FP16));
        float[] big = bf16(randn(300 * 64, 0.1));
        big[1234] = 1e5f;
        WeightSlice s = slice(big, 300, 64);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> fp16.weight(s));
        assertTrue(e.getMessage().contains(s.describe()) && e.getMessage().contains("fp16"), e.getMessage());

        Tensor[] w = weight(bf16(randn(300 * 64, 0.1)), 300, 64, fp16);
        float[] xv = randn(130 * 64, 1);
        xv[5 * 64 + 3] = 1e6f;
        Tensor[] x = act(xv, 130, 64);
        Tensor[] out = poisoned(130, 300);
        fp16.linear(x[1], w[1], null, out[1]);
        cpu.linear(x[0], w[0], null, out[0]);
        float[] got = fp16.toHost(out[1]);
        float[] ref = cpu.toHost(out[0]);
        for (int i = 0; i < got.length; i++) {
            assertTrue(Float.isFinite(got[i]), "output " + i + " is " + got[i]);
            if (i / 300 != 5) {
                assertEquals(ref[i], got[i], 2e-3 * (1 + Math.abs(ref[i])), "row " + i / 300 + " column " + i % 300
                        + " (seed " + SEED + ")");
            }
        }
    }

    /**
     * split-bf16 against the fp32 CPU on weights bf16 cannot hold (fp32 values) and on bf16 ones: linear, embedding,
     * grouped experts and log-probs near fp32, and far closer than bf16 precision on the same inputs.
     */
    @Test
    void splitBf16PrecisionIsNearFp32() throws IOException {
        CudaBackend split = new CudaBackend(CudaOptions.device(0).withPrecision(Precision.SPLIT_BF16));
        for (boolean bf16Weights : new boolean[] {false, true}) {
            int m = 300;
            int n = 700;
            int k = 256;
            float[] wv = randn(n * k, 1 / Math.sqrt(k));
            WeightSlice s = slice(bf16Weights ? bf16(wv) : wv, n, k);
            Tensor wc = cpu.weight(s);
            Tensor ws = split.weight(s);
            Tensor wb = gpu.weight(s);
            float[] xv = randn(m * k, 1);
            Tensor xc = cpu.activation(xv, m, k);
            Tensor xs = split.activation(xv, m, k);
            Tensor oc = cpu.activation(m, n);
            Tensor os = split.activation(m, n);
            Tensor ob = gpu.activation(m, n);
            cpu.linear(xc, wc, null, oc);
            split.linear(xs, ws, null, os);
            gpu.linear(xs, wb, null, ob);
            String weightType = bf16Weights ? "bf16" : "fp32";
            double splitErr = assertValuesClose(cpu.toHost(oc), split.toHost(os), n, 2e-5,
                    "linear, " + weightType + " weights, split-bf16");
            double bf16Err = relativeError(cpu.toHost(oc), gpu.toHost(ob));
            System.out.printf("linear, %s weights: split-bf16 %.2e, bf16 %.2e%n", weightType, splitErr, bf16Err);
            assertTrue(splitErr * 50 < bf16Err, "split-bf16 " + splitErr + " is not far below bf16 " + bf16Err
                    + " (seed " + SEED + ")");

            int[] ids = random.ints(m, 0, n).toArray();
            Tensor ec = cpu.activation(m, k);
            Tensor es = split.activation(m, k);
            cpu.embed(wc, cpu.ints(ids), ec);
            split.embed(ws, split.ints(ids), es);
            assertValuesClose(cpu.toHost(ec), split.toHost(es), k, 1e-5, "embedding rows hi + lo");

            int[] targets = random.ints(m, 0, n).toArray();
            LogProbs lc = cpu.logProbs(xc, wc, cpu.ints(targets), new int[] {0}, 5);
            LogProbs ls = split.logProbs(xs, ws, split.ints(targets), new int[] {0}, 5);
            assertLogProbsClose(lc.targetLogProbs(), ls.targetLogProbs(), m, 1e-4, "log-probs, split-bf16");
            assertArrayEquals(lc.topTokens()[0], ls.topTokens()[0], "top-5 (seed " + SEED + ")");
            for (Tensor t : new Tensor[] {ws, wb}) {
                t.close();
            }
        }
        int t = 500;
        int hidden = 128;
        int ffn = 96;
        int experts = 8;
        WeightSlice[][] slices = new WeightSlice[3][experts];
        for (int e = 0; e < experts; e++) {
            slices[0][e] = slice(randn(ffn * hidden, 1 / Math.sqrt(hidden)), ffn, hidden);
            slices[1][e] = slice(randn(ffn * hidden, 1 / Math.sqrt(hidden)), ffn, hidden);
            slices[2][e] = slice(randn(hidden * ffn, 1 / Math.sqrt(ffn)), hidden, ffn);
        }
        float[] lv = randn(t * experts, 2);
        TopKSoftmaxRouter router = new TopKSoftmaxRouter(2, true);
        ExpertRouting rc = cpu.route(cpu.activation(lv, t, experts), router);
        ExpertRouting rs = split.route(split.activation(lv, t, experts), router);
        ExpertWeights wc = cpu.expertWeights(slices[0], slices[1], slices[2]);
        ExpertWeights ws = split.expertWeights(slices[0], slices[1], slices[2]);
        float[] xv = randn(t * hidden, 1);
        Tensor oc = cpu.activation(t, hidden);
        Tensor os = split.activation(t, hidden);
        cpu.experts(cpu.activation(xv, t, hidden), rc, wc, oc);
        split.experts(split.activation(xv, t, hidden), rs, ws, os);
        assertValuesClose(cpu.toHost(oc), split.toHost(os), hidden, 2e-5, "experts, fp32 weights, split-bf16");
        ws.close();
        rs.close();
    }

    /** One fp32 tensor in its own safetensors file (kept open: the test's temp folder outlives it). */
    WeightSlice slice(float[] values, int rows, int cols) throws IOException {
        Path file = dir.resolve("s" + (files++));
        java.nio.file.Files.createDirectories(file);
        new SafeTensorsWriter(java.util.Map.of()).add("w", DType.F32, values, rows, cols).write(file.resolve("model.safetensors"));
        return WeightSlice.whole(Checkpoint.open(file).get("w"), rows, cols);
    }

    /**
     * top_rows_k (the top-k rows' best tokens, picked on the device) against TopK.indices, exactly: logits drawn from
     * a few values, so most comparisons are ties (lower index first), with -inf among them; k from 1 to past the
     * vocabulary's size.
     */
    @Test
    void topTokensOnTheDeviceInTopKsOrder() {
        int rows = 7;
        int vocab = 3001;
        float[] logits = new float[rows * vocab];
        for (int i = 0; i < logits.length; i++) {
            int r = random.nextInt(12);
            logits[i] = r == 0 ? Float.NEGATIVE_INFINITY : r * 0.25f - 1f;
        }
        CudaLauncher launcher = new CudaLauncher(GpuRuntime.forDevice(0));
        launcher.stream();  // the device's context, current on this thread
        jcuda.driver.CUdeviceptr device = new jcuda.driver.CUdeviceptr();
        jcuda.driver.JCudaDriver.cuMemAlloc(device, logits.length * 4L);
        jcuda.driver.CUdeviceptr out = new jcuda.driver.CUdeviceptr();
        jcuda.driver.JCudaDriver.cuMemAlloc(out, (long) rows * vocab * 4);
        try {
            jcuda.driver.JCudaDriver.cuMemcpyHtoD(device, jcuda.Pointer.to(logits), logits.length * 4L);
            for (int k : new int[] {1, 5, 40, vocab}) {
                launcher.launch("top_rows_k", rows, 1, 256, 0, device, vocab, k, out);
                int[] got = new int[rows * k];
                jcuda.driver.JCudaDriver.cuStreamSynchronize(launcher.stream());
                jcuda.driver.JCudaDriver.cuMemcpyDtoH(jcuda.Pointer.to(got), out, got.length * 4L);
                for (int r = 0; r < rows; r++) {
                    int[] expected = io.moescore.backend.TopK.indices(logits, r * vocab, vocab, k);
                    int[] row = java.util.Arrays.copyOfRange(got, r * k, (r + 1) * k);
                    assertArrayEquals(expected, row, "top-" + k + " of row " + r + " (seed " + SEED + ")");
                }
            }
        } finally {
            jcuda.driver.JCudaDriver.cuMemFree(device);
            jcuda.driver.JCudaDriver.cuMemFree(out);
        }
    }

    /**
     * lm_head's log-softmax on every kernel family this GPU pins: the pre-tiled wgmma ones fold it into the GEMM's
     * epilogue (CudaLogProbs' fused path, lm_head_logsoftmax_T_sm90t*: a partial last vocabulary tile and token tile
     * here), mma.sync keeps the vocabulary chunks; with Granite's logit divisor, a row without a target and top-k rows.
     */
    @Test
    void logProbsOnEveryKernelFamilyMatchTheCpu() throws IOException {
        int t = 300;
        int h = 64;
        int vocab = 5000;
        float[] weights = bf16(randn(vocab * h, 2 / Math.sqrt(h)));
        float[] xs = randn(t * h, 1);
        Tensor cx = cpu.activation(xs, t, h);
        Tensor cw = weight(weights, vocab, h)[0];
        int[] targets = random.ints(t, 0, vocab).toArray();
        targets[t - 1] = -1;
        int[] topRows = {0, 129, t - 1};
        for (float divisor : new float[] {1f, 8f}) {
            LogProbs c = cpu.logProbs(cx, cw, cpu.ints(targets), topRows, 10, divisor);
            for (Kernels k : pinnableFamilies()) {
                CudaBackend pinned = new CudaBackend(CudaOptions.device(0).withKernels(k));
                Tensor xg = pinned.activation(xs, t, h);
                Tensor wg = weight(weights, vocab, h, pinned)[1];
                LogProbs g = pinned.logProbs(xg, wg, pinned.ints(targets), topRows, 5, divisor);
                String what = "log-probs on " + k + ", logits / " + divisor;
                assertLogProbsClose(c.targetLogProbs(), g.targetLogProbs(), t - 1, 2e-2, what);
                assertTrue(Float.isNaN(g.targetLogProbs()[t - 1]), what + ": no target, NaN");
                for (int i = 0; i < topRows.length; i++) {  // bf16 inputs may reorder near-ties: within the top 10
                    java.util.Set<Integer> allowed = new java.util.HashSet<>();
                    for (int v : c.topTokens()[i]) {
                        allowed.add(v);
                    }
                    for (int v : g.topTokens()[i]) {
                        assertTrue(allowed.contains(v), what + ", row " + topRows[i] + ": top-5 token " + v
                                + " not in the CPU's top 10 (seed " + SEED + ")");
                    }
                }
            }
        }
    }

    @Test
    void logProbsOverVocabularyChunksWithTopK() throws IOException {
        int t = 300;
        int h = 64;
        int vocab = 5000;
        Tensor[] w = weight(bf16(randn(vocab * h, 2 / Math.sqrt(h))), vocab, h);
        Tensor[] x = act(randn(t * h, 1), t, h);
        int[] targets = random.ints(t, 0, vocab).toArray();
        targets[t - 1] = -1;
        int[] topRows = {0, 17, t - 1};
        LogProbs c = cpu.logProbs(x[0], w[0], cpu.ints(targets), topRows, 5);
        LogProbs g = gpu.logProbs(x[1], w[1], gpu.ints(targets), topRows, 5);
        assertLogProbsClose(c.targetLogProbs(), g.targetLogProbs(), t - 1, 2e-2, "log-probs over vocabulary chunks");
        assertTrue(Float.isNaN(g.targetLogProbs()[t - 1]), "no target: NaN");
        // bf16 activations may reorder near-ties: every GPU top-5 token must be in the CPU's top 10
        LogProbs c10 = cpu.logProbs(x[0], w[0], cpu.ints(targets), topRows, 10);
        for (int i = 0; i < topRows.length; i++) {
            java.util.Set<Integer> allowed = new java.util.HashSet<>();
            for (int v : c10.topTokens()[i]) {
                allowed.add(v);
            }
            for (int v : g.topTokens()[i]) {
                assertTrue(allowed.contains(v), "row " + topRows[i] + ": GPU top-5 token " + v + " not in CPU top-10"
                        + " (seed " + SEED + ")");
            }
        }
    }
}
