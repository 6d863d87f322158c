package io.moescore.backend.cuda;

import static io.moescore.backend.cuda.KernelComparisons.SEED;
import static io.moescore.backend.cuda.KernelComparisons.assertValuesClose;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.moescore.GpuTest;
import io.moescore.backend.Backend;
import io.moescore.backend.Precision;
import io.moescore.backend.Tensor;
import io.moescore.backend.cpu.CpuBackend;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The wgmma attention kernels (attention_sm90.cu), which a Hopper runs by default, against the CPU reference and
 * against the mma.sync kernels (attention_fa.cu, pinned with {@link Kernels#MMA_SYNC}) on the same packed
 * variable-length batches: causal, sliding windows, GQA, head sizes 64, 128 and 256, bf16 and fp16; outputs
 * poisoned with NaN first, fresh random inputs (seed printed). Needs a GPU of compute capability 9.0; skips
 * elsewhere.
 */
@GpuTest
class CudaAttentionSm90Test {
    static CpuBackend cpu;
    final Random random = new Random(SEED);

    @BeforeAll
    static void start() {
        CudaBackend probe = new CudaBackend(CudaOptions.device(0));
        assumeTrue(probe.runtime().computeCapability().equals("9.0"),
                "the wgmma attention needs compute capability 9.0, this GPU is " + probe.runtime().computeCapability());
        cpu = new CpuBackend(4);
        System.out.println("wgmma attention tests on " + probe.deviceName() + ", random inputs from seed " + SEED
                + " (repeat with -Dmoescore.test.seed=" + SEED + ")");
    }

    @AfterAll
    static void stop() {
        if (cpu != null) {
            cpu.close();
        }
    }

    /**
     * The default backend picks the wgmma kernels where measured faster (head size 256), sm90 at 64, 128 and 256;
     * MMA_SYNC keeps the mma.sync ones.
     */
    @Test
    void hopperPicksTheWgmmaKernelsUnlessPinnedToMmaSync() {
        String pinned = System.getProperty(KernelChoice.ATTENTION_PROPERTY, System.getenv(KernelChoice.ATTENTION_ENV));
        assumeTrue(pinned == null, "attention pinned by -Dmoescore.attention / MOESCORE_ATTENTION");
        for (Precision precision : new Precision[] {Precision.BF16, Precision.FP16}) {
            CudaBackend auto = new CudaBackend(CudaOptions.device(0).withPrecision(precision));
            CudaBackend wgmma = sm90(precision);
            CudaBackend mma = new CudaBackend(CudaOptions.device(0).withPrecision(precision)
                    .withKernels(Kernels.MMA_SYNC));
            for (int d : new int[] {64, 128, 256}) {
                assertEquals(KernelChoice.SM90_ATTENTION_HEAD_DIMS.contains(d) ? AttentionKernel.Kind.SM90
                        : AttentionKernel.Kind.HALF_INPUTS, auto.attentionKernel(d).kind(), precision + " auto d" + d);
                assertEquals(AttentionKernel.Kind.SM90, wgmma.attentionKernel(d).kind(), precision + " d" + d);
                assertEquals(AttentionKernel.Kind.HALF_INPUTS, mma.attentionKernel(d).kind(), precision + " d" + d);
            }
            assertEquals(AttentionKernel.Kind.TENSOR_CORES, wgmma.attentionKernel(96).kind(), "head size 96");
        }
    }

    /** A backend with -Dmoescore.attention=sm90: the wgmma kernels at every head size they take. */
    private static CudaBackend sm90(Precision precision) {
        String before = System.getProperty(KernelChoice.ATTENTION_PROPERTY);
        System.setProperty(KernelChoice.ATTENTION_PROPERTY, "sm90");
        try {
            return new CudaBackend(CudaOptions.device(0).withPrecision(precision));
        } finally {
            if (before == null) {
                System.clearProperty(KernelChoice.ATTENTION_PROPERTY);
            } else {
                System.setProperty(KernelChoice.ATTENTION_PROPERTY, before);
            }
        }
    }

    @Test
    void bf16MatchesTheCpuAndTheMmaSyncKernel() {
        againstCpuAndMmaSync(Precision.BF16);
    }

    @Test
    void fp16MatchesTheCpuAndTheMmaSyncKernel() {
        againstCpuAndMmaSync(Precision.FP16);
    }

    private void againstCpuAndMmaSync(Precision precision) {
        CudaBackend wgmma = sm90(precision);
        CudaBackend mma = new CudaBackend(CudaOptions.device(0).withPrecision(precision).withKernels(Kernels.MMA_SYNC));
        // packed odd lengths: one-row sequences, partial tiles, several turns of the K/V ring
        int[] lengths = {1, 77, 128, 300, 513, 1000, 2, 129};
        int[] offsets = new int[lengths.length + 1];
        for (int i = 0; i < lengths.length; i++) {
            offsets[i + 1] = offsets[i] + lengths[i];
        }
        int t = offsets[lengths.length];
        // heads, kv heads, head size, window
        for (int[] cfg : new int[][] {{16, 4, 128, 0}, {8, 8, 128, 100}, {8, 1, 64, 0}, {16, 2, 64, 100},
            {4, 2, 256, 0}, {4, 1, 256, 300}}) {
            int h = cfg[0];
            int kv = cfg[1];
            int hd = cfg[2];
            int window = cfg[3];
            String what = precision.userName() + " wgmma attention h" + h + " kv" + kv + " d" + hd + " w" + window;
            assertEquals(AttentionKernel.Kind.SM90, wgmma.attentionKernel(hd).kind(), what);
            float[] q = randn(t * h * hd);
            float[] k = randn(t * kv * hd);
            float[] v = randn(t * kv * hd);
            float[] ref = run(cpu, q, k, v, offsets, t, h, kv, hd, window);
            float[] fa = run(mma, q, k, v, offsets, t, h, kv, hd, window);
            Tensor out = poisoned(wgmma, t, h * hd);
            wgmma.attention(wgmma.activation(q, t, h * hd), wgmma.activation(k, t, kv * hd),
                    wgmma.activation(v, t, kv * hd), wgmma.ints(offsets), h, kv, hd, window, out);
            float[] got = wgmma.toHost(out);
            assertValuesClose(ref, got, h * hd, 1e-2, what + " vs CPU");
            // the same half inputs and the same rounding of p: closer to each other than either to the CPU
            assertValuesClose(fa, got, h * hd, 5e-3, what + " vs mma.sync");
            if (precision == Precision.BF16) {
                CudaBackendTest.assertCopyIsTheRoundedValues(wgmma, out, what);
            }
        }
    }

    private float[] run(Backend b, float[] q, float[] k, float[] v, int[] offsets, int t, int h, int kv, int hd,
                        int window) {
        Tensor out = poisoned(b, t, h * hd);
        b.attention(b.activation(q, t, h * hd), b.activation(k, t, kv * hd), b.activation(v, t, kv * hd),
                b.ints(offsets), h, kv, hd, window, out);
        return b.toHost(out);
    }

    private static Tensor poisoned(Backend b, int rows, int cols) {
        float[] nan = new float[rows * cols];
        Arrays.fill(nan, Float.NaN);
        return b.activation(nan, rows, cols);
    }

    private float[] randn(int n) {
        float[] f = new float[n];
        for (int i = 0; i < n; i++) {
            f[i] = (float) random.nextGaussian();
        }
        return f;
    }
}
