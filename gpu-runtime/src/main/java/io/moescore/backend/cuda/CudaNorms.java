package io.moescore.backend.cuda;

import static io.moescore.backend.cuda.CudaLauncher.blocks;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;

import io.moescore.backend.ColumnBlocks;
import io.moescore.backend.IntTensor;
import io.moescore.backend.Tensor;
import io.moescore.model.Rope;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.IntPredicate;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;

/**
 * The normalisation and rotary ops of {@link CudaBackend} (elementwise.cu): rmsNorm over rows or head groups,
 * addRmsNorm's one pass, RoPE and the q/k norms fused with it. Where attention reads q and k as 16-bit copies
 * ({@code readsHalfQk}: the half-input kernels at that head size), RoPE writes them in its own pass, and only them
 * when attention alone reads the result.
 */
final class CudaNorms {
    private final CudaLauncher launcher;
    private final HalfType type;
    private final CudaWeights weights;
    private final IntPredicate readsHalfQk;
    private final String deviceName;
    private final Map<Rope, CUdeviceptr> invFreqs = new ConcurrentHashMap<>();

    /** readsHalfQk: whether attention reads q and k as 16-bit copies at a head size. */
    CudaNorms(CudaLauncher launcher, HalfType type, CudaWeights weights, IntPredicate readsHalfQk, String deviceName) {
        this.launcher = launcher;
        this.type = type;
        this.weights = weights;
        this.readsHalfQk = readsHalfQk;
        this.deviceName = deviceName;
    }

    /** rmsNorm over rows, or over groups of groupSize columns (the q/k norms of some families). */
    void rmsNorm(Tensor x, Tensor weight, int groupSize, float eps, Tensor out) {
        launcher.timed("rmsNorm", () -> {
            CudaTensor in = CudaTensor.of(x);
            CudaTensor w = CudaTensor.of(weight);
            CudaTensor o = CudaTensor.of(out);
            if (w.cols != groupSize || in.cols % groupSize != 0) {
                throw new IllegalArgumentException("rmsNorm over groups of " + groupSize + " of " + in.cols
                        + " columns with " + w.cols + " weights");
            }
            if (o.hasCopy() && groupSize == in.cols) {  // whole rows into a tensor with a copy: written alike
                normRows(in, null, w, o, eps, true);
                return;
            }
            long groups = in.elements() / groupSize;
            launcher.launch("rmsnorm_f32", groups, 1, groupSize >= 1024 ? 256 : 128, 0, in.requireF32("rmsNorm"),
                    w.requireF32("rmsNorm"), CudaTensor.output(out, "rmsNorm").f32, (int) groups, groupSize, eps);
        });
    }

    /**
     * One pass over x (elementwise.cu, rmsnorm_rows_T): x += delta, then out's 16-bit copy and, keepF32 or where
     * out has no copy, its fp32 values (else left undefined: Backend.addRmsNormForProducts).
     */
    void addRmsNorm(Tensor x, Tensor delta, Tensor weight, float eps, Tensor out, boolean keepF32) {
        launcher.timed("addRmsNorm", () -> {
            CudaTensor in = CudaTensor.output(x, "addRmsNorm's residual");
            CudaTensor d = CudaTensor.of(delta);
            CudaTensor w = CudaTensor.of(weight);
            CudaTensor o = CudaTensor.of(out);
            if (d.rows != in.rows || d.cols != in.cols || w.cols != in.cols) {
                throw new IllegalArgumentException("addRmsNorm: x " + in.rows + "x" + in.cols + ", delta " + d.rows
                        + "x" + d.cols + ", weight of " + w.cols);
            }
            normRows(in, d.requireF32("addRmsNorm"), w, o, eps, keepF32);
        });
    }

    private void normRows(CudaTensor x, CUdeviceptr delta, CudaTensor w, CudaTensor out, float eps, boolean keepF32) {
        if (out.rows != x.rows || out.cols != x.cols) {
            throw new IllegalArgumentException("rmsNorm of " + x.rows + "x" + x.cols + " into " + out.rows + "x"
                    + out.cols);
        }
        CUdeviceptr copy = out.hasCopy() ? out.copyBuffer() : null;
        boolean f32 = keepF32 || copy == null;  // without a copy the fp32 values are the only result
        if (copy == null) {
            CudaTensor.output(out, "rmsNorm");
        }
        launcher.launch(type.normKernel, x.rows, 1, x.cols >= 2048 ? 512 : x.cols >= 512 ? 256 : 128, 0,
                x.requireF32("rmsNorm"), delta, w.requireF32("rmsNorm"), f32 ? out.f32 : null, copy, x.rows, x.cols,
                eps);
        if (copy != null) {
            out.wroteCopy(f32);
        }
    }

    /**
     * Rotary embeddings over the first rotaryDim columns of whole heads (all of them, or GLM-4.5's partial rotary),
     * rotate-half or interleaved pairs, YaRN's frequencies and attention factor; keepF32 false: only the 16-bit copy
     * attention reads (the columns past rotaryDim copied as they are).
     */
    void rope(Tensor x, ColumnBlocks blocks, Rope rope, IntTensor positions, boolean keepF32) {
        int headDim = blocks.stride();
        int rot = blocks.width();
        if (!ropeTakes(x.cols(), blocks, rope)) {
            throw new UnsupportedOperationException(deviceName + " has no rope kernel for " + rope.describe()
                    + " over " + blocks + " of " + x.cols() + " columns (it rotates the first columns of whole "
                    + "heads); use the CPU backend");
        }
        launcher.timed("rope", () -> {
            CudaTensor t = CudaTensor.stridedOutput(x, "rope");  // q and k may be views of the fused product
            CUdeviceptr inv = invFreq(rope);
            long items = (long) t.rows * (t.cols / headDim) * (headDim / 2);
            CUdeviceptr pos = CudaTensor.Ints.of(positions).device;
            int interleaved = rope.interleaved() ? 1 : 0;
            float factor = rope.attentionFactor();
            if (readsHalfQk.test(headDim)) {
                // q and k as the half-input attention reads them, written in the same pass (elementwise.cu)
                launcher.launch(type.ropeKernel, blocks(items, 256), 1, 256, 0, t.f32, t.copyBuffer(), pos, inv,
                        t.rows, t.cols, t.ld, headDim, rot, interleaved, factor, keepF32 ? 1 : 0);
                t.wroteCopy(keepF32);
            } else {
                launcher.launch("rope_f32", blocks(items, 256), 1, 256, 0, t.f32, pos, inv, t.rows, t.cols, t.ld,
                        headDim, rot, interleaved, factor);
            }
        });
    }

    /** Whether {@link #rope} takes these blocks of a tensor of cols columns: the first columns of whole heads. */
    boolean ropeTakes(int cols, ColumnBlocks blocks, Rope rope) {
        int headDim = blocks.stride();
        int rot = blocks.width();
        return blocks.first() == 0 && rot == rope.rotaryDim() && rot % 2 == 0 && headDim >= rot
                && (headDim - rot) % 2 == 0 && (long) blocks.count() * headDim == cols;
    }

    /**
     * One pass where attention reads half-precision q and k (elementwise.cu, rmsnorm_rope_T: the row staged in
     * shared memory, normed, rotated, written in fp32 and, keepF32 false, only in the 16-bit type). Returns false,
     * having done nothing, where that pass does not apply (the caller runs the two ops).
     */
    boolean rmsNormRope(Tensor x, Tensor weight, int groupSize, float eps, ColumnBlocks blocks, Rope rope,
                        IntTensor positions, boolean keepF32) {
        int cols = x.cols();
        int headDim = blocks.width();
        if (!inOnePass(cols, groupSize, blocks, rope) || weight.cols() != groupSize) {
            return false;
        }
        launcher.timed("rmsNormRope", () -> {
            CudaTensor t = CudaTensor.stridedOutput(x, "rmsNormRope");  // may be a view of the fused product
            if (t.ld % 4 != 0) {
                throw new IllegalArgumentException("rmsNormRope reads rows with 16-byte loads: a row stride of "
                        + t.ld + " floats cannot");
            }
            CUdeviceptr w = CudaTensor.of(weight).requireF32("rmsNormRope");
            launcher.launch(type.normRopeKernel, t.rows, 1, 256, (int) normRopeSharedBytes(cols, groupSize), t.f32, w,
                    t.copyBuffer(), CudaTensor.Ints.of(positions).device, invFreq(rope), t.rows,
                    cols, t.ld, groupSize, headDim, eps, keepF32 ? 1 : 0);
            t.wroteCopy(keepF32);
        });
        return true;
    }

    /** Whether rmsnorm_rope_T takes this op: whole plain-RoPE heads read by the half-input attention, 16-byte rows. */
    boolean inOnePass(int cols, int groupSize, ColumnBlocks blocks, Rope rope) {
        int headDim = blocks.width();
        return blocks.wholeHeadsOf(cols) && rope.isPlain(headDim) && readsHalfQk.test(headDim) && cols % 4 == 0
                && groupSize % 4 == 0 && cols % groupSize == 0 && normRopeSharedBytes(cols, groupSize) <= 48 * 1024;
    }

    /** rmsnorm_rope_T's shared memory: the row, then one scale per group. */
    private static long normRopeSharedBytes(int cols, int groupSize) {
        return (cols + (long) cols / Math.max(1, groupSize)) * 4;
    }

    /** RoPE's inverse frequencies (Rope.inverseFrequencies, as CpuBackend and transformers), on the device once. */
    private CUdeviceptr invFreq(Rope rope) {
        return invFreqs.computeIfAbsent(rope, key -> {
            float[] f = rope.inverseFrequencies();
            CUdeviceptr p = weights.allocate(f.length * 4L);
            cuMemcpyHtoD(p, Pointer.to(f), f.length * 4L);
            return p;
        });
    }
}
