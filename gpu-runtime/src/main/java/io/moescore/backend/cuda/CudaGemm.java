package io.moescore.backend.cuda;

import static io.moescore.backend.cuda.CudaLauncher.blocks;

import io.moescore.backend.Precision;
import io.moescore.backend.cuda.KernelVariant.Family;
import java.util.function.Consumer;
import jcuda.driver.CUdeviceptr;

/**
 * The dense GEMM launches (out = a w^T, the linear layers and lm_head): GEMM inputs rounded to the precision's
 * 16-bit rows, then the {@link Family#LINEAR} kernels over plain weight rows or the {@link Family#LINEAR_TILED}
 * ones over a pre-tiled copy, the variant chosen per shape ({@link KernelChoice}).
 */
final class CudaGemm {
    private final CudaLauncher launcher;
    private final KernelChoice choice;
    private final Precision precision;
    private final HalfType type;
    private final CudaWeights weights;

    CudaGemm(CudaLauncher launcher, KernelChoice choice, Precision precision, CudaWeights weights) {
        this.launcher = launcher;
        this.choice = choice;
        this.precision = precision;
        this.type = HalfType.of(precision);
        this.weights = weights;
    }

    /** 16-bit copies per GEMM input row against a weight of wParts copies (gemm.cu, Precision). */
    int inputParts(int wParts) {
        return precision == Precision.SPLIT_BF16 ? wParts + 1 : 1;
    }

    /**
     * A GEMM's input rows: a normed activation's own 16-bit copy (borrowed), or a copy converted from fp32 into the
     * pool, released on close.
     */
    record Input(CUdeviceptr rows, DevicePool pool, long pooledBytes) implements AutoCloseable {
        @Override
        public void close() {
            if (pooledBytes > 0) {
                pool.release(rows, pooledBytes);
            }
        }
    }

    /**
     * An activation as GEMM input rows of aParts 16-bit copies: its 16-bit copy where the norm wrote one (the same
     * bits to_T_parts would write for one part), else converted here.
     */
    Input input(CudaTensor x, int aParts, DevicePool pool) {
        if (aParts == 1 && x.currentCopy() != null) {
            return new Input(x.currentCopy(), pool, 0);
        }
        long bytes = x.elements() * 2 * aParts;
        CUdeviceptr xb = pool.allocate(bytes);
        launcher.launch(type.toPartsKernel, blocks(x.elements(), 256), 1, 256, 0, x.requireF32("a GEMM input of "
                + aParts + " parts"), xb, (long) x.rows, x.cols, aParts);
        return new Input(xb, pool, bytes);
    }

    /** out = x w^T (+ bias) for a weight held as 16-bit rows. */
    void linear(CudaTensor in, CudaTensor w, CUdeviceptr bias, CudaTensor out) {
        int aParts = inputParts(w.parts);
        try (Input xb = input(in, aParts, launcher.pool())) {
            CUdeviceptr tiled = tiledWeight(w);
            if (tiled != null) {
                multiplyTiled(xb.rows(), tiled, bias, out.f32, in.rows, w.rows, in.cols);
            } else {
                multiply(xb.rows(), w.half, bias, out.f32, in.rows, w.rows, in.cols, aParts, w.parts);
            }
        }
    }

    /**
     * The pre-tiled copy of a weight (made on its first use) where its GEMMs run on the bulk-copy kernels: wgmma
     * with one part per input (bf16 or fp16 precision); null where they read the plain rows.
     */
    CUdeviceptr tiledWeight(CudaTensor w) {
        boolean tiled = choice.runsWgmma() && precision != Precision.SPLIT_BF16 && w.parts == 1 && w.half != null
                && w.cols % 8 == 0;
        return tiled ? weights.tiled(w) : null;
    }

    /** out = a w^T (+ bias) over pre-tiled w (n rows, k columns): the linear_T_sm90t kernels, tuned per shape. */
    void multiplyTiled(CUdeviceptr a, CUdeviceptr wTiled, CUdeviceptr bias, CUdeviceptr out, int m, int n, int k) {
        Consumer<KernelVariant> run = v -> {
            launcher.allowSharedMemory(v);
            launcher.launch(v.name(), blocks(m, v.family().tokenRows), (int) blocks(n, v.rowTile()), v.threads(),
                    v.sharedBytes(), a, wTiled, bias, out, m, n, k);
        };
        run.accept(choice.choose("linear " + KernelTuner.bucket(m) + "x" + n + "x" + k + " tiled",
                Family.LINEAR_TILED, run));
    }

    /** out = a w^T over k columns, a in rows of aParts copies, w in rows of wParts copies (gemm.cu, Precision). */
    void multiply(CUdeviceptr a, CUdeviceptr w, CUdeviceptr bias, CUdeviceptr out, int m, int n, int k, int aParts,
                  int wParts) {
        if (k % 8 != 0) {
            throw new IllegalArgumentException("the CUDA backend needs inner dimensions that are multiples of 8, got " + k);
        }
        Consumer<KernelVariant> run = v -> {
            launcher.allowSharedMemory(v);
            launcher.launch(v.name(), blocks(m, v.family().tokenRows), (int) blocks(n, v.rowTile()), v.threads(),
                    v.sharedBytes(), a, w, bias, out, m, n, k * aParts, k * wParts);
        };
        run.accept(choice.choose("linear " + KernelTuner.bucket(m) + "x" + n + "x" + k + " parts " + aParts + "/"
                + wParts, Family.LINEAR, run));
    }
}
