package io.moescore.backend.cuda;

import static io.moescore.backend.cuda.CudaLauncher.blocks;
import static jcuda.driver.JCudaDriver.cuMemsetD32Async;

import io.moescore.backend.AttentionHeads;
import io.moescore.backend.ColumnBlocks;
import io.moescore.backend.IntTensor;
import io.moescore.backend.Precision;
import io.moescore.backend.Tensor;
import jcuda.driver.CUdeviceptr;

/**
 * The attention op of {@link CudaBackend}: causal grouped-query attention over packed sequences on the kernel a head
 * size and precision take ({@link AttentionKernel}: attention_sm90.cu, attention_fa.cu, attention_tc.cu,
 * attention.cu), the tile list built once per forward (AttentionTiles), and latent attention's pieces: column copies
 * (elementwise.cu, copy_columns_f32) and q/k and v heads of two widths through padded heads.
 */
final class CudaAttention {
    /** log2(e): the half-input attention kernels take their softmax scale in base 2. */
    private static final double LOG2_E = 1.4426950408889634;

    private final CudaLauncher launcher;
    private final GpuRuntime gpu;
    private final KernelChoice choice;
    private final HalfType type;
    private final Precision precision;

    CudaAttention(CudaLauncher launcher, GpuRuntime gpu, KernelChoice choice, HalfType type, Precision precision) {
        this.launcher = launcher;
        this.gpu = gpu;
        this.choice = choice;
        this.type = type;
        this.precision = precision;
    }

    /** elementwise.cu, copy_columns_f32: the columns of dst that no block reaches keep their values. */
    void copyColumns(Tensor src, ColumnBlocks from, Tensor dst, ColumnBlocks to) {
        launcher.timed("copyColumns", () -> {
            CudaTensor s = CudaTensor.of(src);
            CudaTensor d = CudaTensor.of(dst);
            if (from.count() != to.count() || from.width() != to.width() || s.rows != d.rows || from.end() > s.cols
                    || to.end() > d.cols || src == dst) {
                throw new IllegalArgumentException("copyColumns: " + from + " of " + s.rows + "x" + s.cols + " into "
                        + to + " of " + d.rows + "x" + d.cols + (src == dst ? " (the same tensor)" : ""));
            }
            CUdeviceptr in = s.requireF32("copyColumns");
            d.requireDefined("copyColumns");  // the columns no block reaches are kept, so they must hold values
            CudaTensor.output(dst, "copyColumns");
            launcher.launch("copy_columns_f32", blocks((long) s.rows * from.count() * from.width(), 256), 1, 256, 0,
                    in, s.cols, from.first(), from.stride(), d.f32, d.cols, to.first(), to.stride(), s.rows,
                    from.count(), from.width());
        });
    }

    /** Whether attention reads q and k as 16-bit copies at this head size, which RoPE then writes in its pass. */
    boolean readsHalfQk(int headDim) {
        return headDim <= 256 && kernel(headDim).halfInputs();
    }

    /**
     * The attention kernel for a head size: at bf16 and fp16 the half-input one at head_dim 64, 128 and 256
     * (attention_sm90.cu on a Hopper running the wgmma families, {@link KernelChoice#runsWgmmaAttention}, else
     * attention_fa.cu), else tensor cores with fp32 inputs (attention_tc.cu) up to 128; split-bf16 and the rest:
     * fp32 (attention.cu).
     */
    AttentionKernel kernel(int headDim) {
        return AttentionKernel.pick(type, precision != Precision.SPLIT_BF16, choice.runsWgmmaAttention(headDim),
                headDim, gpu.maxSharedPerBlock());
    }

    /**
     * Heads of one width (any softmax scale); q/k and v heads of different widths (DeepSeek's latent attention: 192
     * and 128) run as heads of one padded width, the next the half-input kernels take (64, 128, 256) where there is
     * one, else the wider of the two: zero columns change no dot product, and the output's padding is dropped. The
     * padding costs the copies and the wider heads' work; no kernel of MLA's own widths exists yet.
     */
    void run(Tensor q, Tensor k, Tensor v, IntTensor seqOffsets, AttentionHeads heads, int window, Tensor out) {
        if (heads.qkHeadDim() != heads.vHeadDim()) {
            padded(q, k, v, seqOffsets, heads, window, out);
            return;
        }
        int numHeads = heads.numHeads();
        int numKvHeads = heads.numKvHeads();
        int headDim = heads.qkHeadDim();
        // the standard scale exactly as before (1/sqrt(head_dim), log2(e)/sqrt(head_dim)), else the heads' own
        float scale = heads.isStandard() ? (float) (1.0 / Math.sqrt(headDim)) : (float) heads.scale();
        float log2Scale = heads.isStandard() ? (float) (LOG2_E / Math.sqrt(headDim)) : (float) (LOG2_E * heads.scale());
        launcher.timed("attention", () -> {
            if (headDim > 256 || headDim % 8 != 0) {
                throw new IllegalArgumentException("the CUDA attention kernel supports head_dim up to 256 and a "
                        + "multiple of 8, got " + headDim);
            }
            AttentionKernel kernel = kernel(headDim);
            CudaTensor.Ints offsets = CudaTensor.Ints.of(seqOffsets);
            CudaTensor.Ints tiles = offsets.derived("attention tiles of " + kernel.rows() + " rows, window " + window,
                    () -> launcher.upload(AttentionTiles.build(offsets.host, kernel.rows(), window)));
            int tileCount = tiles.length() / 3;
            int shared = kernel.sharedBytes(headDim);
            if (shared > 48 * 1024) {
                gpu.allowSharedMemory(gpu.function(kernel.name()), shared);
            }
            CudaTensor qt = CudaTensor.of(q);
            CudaTensor kt = CudaTensor.of(k);
            CudaTensor vt = CudaTensor.of(v);
            CudaTensor o = CudaTensor.output(out, "attention");
            if (!kernel.halfInputs()) {
                launcher.launch(kernel.name(), tileCount, numHeads, kernel.threads(), shared, qt.requireF32("attention"),
                        kt.requireF32("attention"), vt.requireF32("attention"), o.f32, tiles.device, numHeads,
                        numKvHeads, headDim, window, scale);
                return;
            }
            // the output in fp32 and, in the same stores, the o projection's 16-bit input (attention_fa.cu, _sm90.cu)
            launcher.launch(kernel.name(), (long) tileCount * numHeads, 1, kernel.threads(), shared, halfInput(qt),
                    halfInput(kt), halfInput(vt), o.f32, o.copyBuffer(), tiles.device, numHeads, numKvHeads, window,
                    log2Scale);
            o.wroteCopy();
        });
    }

    /** {@link #run} of q/k and v heads of different widths, through heads of one padded width. */
    private void padded(Tensor q, Tensor k, Tensor v, IntTensor seqOffsets, AttentionHeads heads, int window,
                        Tensor out) {
        int n = heads.numHeads();
        int nkv = heads.numKvHeads();
        int dq = heads.qkHeadDim();
        int dv = heads.vHeadDim();
        int wide = Math.max(dq, dv);
        int d = wide;
        for (int half : new int[] {64, 128, 256}) {
            if (half >= wide && readsHalfQk(half)) {
                d = half;
                break;
            }
        }
        d = (d + 7) / 8 * 8;
        AttentionHeads padded = new AttentionHeads(n, nkv, d, d, heads.scale());
        int t = q.rows();
        try (Tensor qp = zeros(t, n * d); Tensor kp = zeros(t, nkv * d); Tensor vp = zeros(t, nkv * d);
             Tensor op = activation(t, n * d)) {
            copyColumns(q, ColumnBlocks.heads(n, dq), qp, new ColumnBlocks(0, d, n, dq));
            copyColumns(k, ColumnBlocks.heads(nkv, dq), kp, new ColumnBlocks(0, d, nkv, dq));
            copyColumns(v, ColumnBlocks.heads(nkv, dv), vp, new ColumnBlocks(0, d, nkv, dv));
            run(qp, kp, vp, seqOffsets, padded, window, op);
            copyColumns(op, new ColumnBlocks(0, d, n, dv), out, ColumnBlocks.heads(n, dv));
        }
    }

    private Tensor activation(int rows, int cols) {
        return CudaTensor.activation(rows, cols, gpu.pool(), false);
    }

    /** A new activation of zeros. */
    private Tensor zeros(int rows, int cols) {
        Tensor z = activation(rows, cols);
        launcher.timed("zeros", () -> cuMemsetD32Async(CudaTensor.output(z, "zeros").f32, 0,
                (long) rows * cols, launcher.stream()));
        return z;
    }

    /**
     * The 16-bit copy the half-input attention kernels read: q and k's as RoPE wrote it, else (v) converted here
     * into the tensor's copy buffer, current until the tensor is written again.
     */
    private CUdeviceptr halfInput(CudaTensor x) {
        CUdeviceptr current = x.currentCopy();
        if (current != null) {
            return current;
        }
        if (x.f32 == null || x.cols % 4 != 0 || x.ld % 4 != 0) {
            throw new IllegalArgumentException("attention's 16-bit inputs are converted 4 values at a time: a "
                    + x.rows + " x " + x.cols + " tensor (rows " + x.ld + " floats apart) cannot be");
        }
        CUdeviceptr h = x.copyBuffer();
        launcher.launch(type.toHalfKernel, blocks(x.elements() / 4, 256), 1, 256, 0, x.f32, h, x.elements(), x.cols,
                x.ld);
        x.wroteCopy();
        return h;
    }
}
