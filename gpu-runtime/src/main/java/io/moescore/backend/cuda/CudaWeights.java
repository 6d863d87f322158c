package io.moescore.backend.cuda;

import static io.moescore.backend.cuda.CudaLauncher.blocks;
import static io.moescore.backend.cuda.KernelConstants.S90_BK;
import static io.moescore.backend.cuda.KernelConstants.S90_W_BLOCK_BYTES;
import static io.moescore.backend.cuda.KernelConstants.S90_W_BLOCK_ROWS;
import static io.moescore.backend.cuda.KernelConstants.SP9_HALF_ROWS;
import static io.moescore.backend.cuda.KernelConstants.SP9_K;
import static io.moescore.backend.cuda.KernelConstants.SP9_W_BYTES;
import static io.moescore.backend.cuda.KernelConstants.SP_ROWS;
import static io.moescore.backend.cuda.KernelConstants.VN_ROWS;
import static io.moescore.backend.cuda.KernelConstants.VN_W_BYTES;
import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;

import io.moescore.backend.DeviceOutOfMemoryException;
import io.moescore.backend.ExpertWeights;
import io.moescore.backend.Precision;
import io.moescore.backend.Tensor;
import io.moescore.backend.WeightSlice;
import io.moescore.model.DType;
import io.moescore.model.SafeTensorsWriter;
import io.moescore.sparse.Sparse24;
import io.moescore.sparse.VectorSparse;
import java.nio.ByteBuffer;
import jcuda.CudaException;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUresult;

/**
 * Weights onto one GPU, once, in the layouts the backend's kernels read: 16-bit rows in the precision's type (and
 * their lo parts at split-bf16), experts' gate and up rows interleaved, 2:4 and 128:2:8 experts packed, and, for
 * the sm_90a kernels, everything pre-tiled into blocks laid out as shared memory holds them (the tile_* kernels
 * of gemm_sm90.cu, sparse24_sm90.cu and vnm_sm90.cu; block sizes from {@link KernelConstants}). Nothing stays
 * allocated when an upload fails.
 */
final class CudaWeights {
    /** Weights with at most this many rows keep an fp32 copy and multiply in fp32 (routers, gates, norms). */
    static final int SMALL_WEIGHT_ROWS = 256;

    private final CudaLauncher launcher;
    private final Precision precision;
    private final KernelChoice choice;

    CudaWeights(CudaLauncher launcher, Precision precision, KernelChoice choice) {
        this.launcher = launcher;
        this.precision = precision;
        this.choice = choice;
    }

    /** 16-bit copies per weight row (gemm.cu, Precision): a lo part only at split-bf16, where bf16 cannot hold it. */
    int weightParts(WeightSlice s) {
        return precision == Precision.SPLIT_BF16 && s.tensor().dtype() != DType.BF16 ? 2 : 1;
    }

    /**
     * The pre-tiled copy of a linear layer's 16-bit rows the bulk-copy kernels read, made on the weight's first use
     * and kept beside the plain rows, which the embedding (tied to lm_head in some models) and the other kernel
     * families read.
     */
    CUdeviceptr tiled(CudaTensor w) {
        return w.tiled(t -> tileDense(t.half, 1, t.rows, t.cols));
    }

    /** Device memory for weights (outside the pools), failing with the bytes asked for when the GPU is full. */
    CUdeviceptr allocate(long bytes) {
        launcher.gpu.bind();
        CUdeviceptr p = new CUdeviceptr();
        try {
            cuMemAlloc(p, Math.max(bytes, 4));
        } catch (CudaException e) {
            if (e.getMessage().contains(CUresult.stringFor(CUresult.CUDA_ERROR_OUT_OF_MEMORY))) {
                throw new DeviceOutOfMemoryException("out of GPU memory on " + launcher.gpu.name()
                        + " placing the model's weights (" + bytes + " more bytes)");
            }
            throw e;
        }
        return p;
    }

    /**
     * Copies elements [first, first + count) of a slice's tensor to the device as this precision's 16-bit type (bf16,
     * or fp16 at fp16 precision), at byte offset dst: the checkpoint's bytes where it stores that type already.
     */
    private void uploadHalf(WeightSlice s, long first, long count, CUdeviceptr dst) {
        final long chunk = 16L << 20;
        DType stored = precision == Precision.FP16 ? DType.F16 : DType.BF16;
        for (long done = 0; done < count; done += chunk) {
            int n = (int) Math.min(chunk, count - done);
            CUdeviceptr at = dst.withByteOffset(done * 2);
            if (s.tensor().dtype() == stored) {
                ByteBuffer raw = s.tensor().bytes(first + done, n);
                cuMemcpyHtoD(at, Pointer.to(raw), n * 2L);
            } else {
                float[] f = s.tensor().toFloats(first + done, n);
                cuMemcpyHtoD(at, Pointer.to(toHalf(f, s.describe())), n * 2L);
            }
        }
    }

    /**
     * Values as this precision's 16-bit type. fp16 refuses a value beyond its range (+-65504) rather than load an
     * infinity that would turn every score it touches into NaN; {@code what} names the tensor in that error.
     */
    private short[] toHalf(float[] f, String what) {
        if (precision != Precision.FP16) {
            return toBf16(f);
        }
        short[] out = new short[f.length];
        for (int i = 0; i < f.length; i++) {
            out[i] = DType.floatToHalf(f[i]);
            if ((out[i] & 0x7c00) == 0x7c00 && Float.isFinite(f[i])) {
                throw new IllegalArgumentException(what + " holds " + f[i] + ", beyond fp16's range (+-65504): "
                        + "score this model with bf16 or split-bf16 precision");
            }
        }
        return out;
    }

    /**
     * Copies `rows` rows of `cols` elements, from element `first` of a slice's tensor, to the device as 16-bit rows
     * of `parts` copies each: hi, then (parts 2, split-bf16 only) lo = the rounding error of hi, also in bf16.
     */
    private void uploadRows(WeightSlice s, long first, long rows, int cols, int parts, CUdeviceptr dst) {
        if (parts == 1) {
            uploadHalf(s, first, rows * cols, dst);
            return;
        }
        int rowsPerChunk = (int) Math.max(1, Math.min(rows, (8L << 20) / cols));
        for (long r = 0; r < rows; r += rowsPerChunk) {
            int n = (int) Math.min(rowsPerChunk, rows - r);
            float[] f = s.tensor().toFloats(first + r * cols, n * cols);
            short[] out = new short[2 * n * cols];
            for (int i = 0; i < n; i++) {
                for (int c = 0; c < cols; c++) {
                    float v = f[i * cols + c];
                    short hi = SafeTensorsWriter.toBf16(v);
                    out[2 * i * cols + c] = hi;
                    out[(2 * i + 1) * cols + c] = SafeTensorsWriter.toBf16(v - Float.intBitsToFloat(hi << 16));
                }
            }
            cuMemcpyHtoD(dst.withByteOffset(r * cols * 2 * 2), Pointer.to(out), out.length * 2L);
        }
    }

    static short[] toBf16(float[] f) {
        short[] out = new short[f.length];
        for (int i = 0; i < f.length; i++) {
            out[i] = SafeTensorsWriter.toBf16(f[i]);
        }
        return out;
    }

    /**
     * A weight as 16-bit rows of {@link #weightParts} copies, and where it has at most {@link #SMALL_WEIGHT_ROWS}
     * rows an fp32 copy too.
     */
    Tensor weight(WeightSlice s) {
        long n = (long) s.rows() * s.cols();
        int parts = weightParts(s);
        CUdeviceptr rows16 = null;
        CUdeviceptr f32 = null;
        if (s.rows() > 1) {
            rows16 = allocate(n * 2 * parts);
            try {
                uploadRows(s, s.firstElement(), s.rows(), s.cols(), parts, rows16);
            } catch (RuntimeException e) {  // a value fp16 cannot hold: nothing stays allocated
                GpuRuntime.free(rows16);
                throw e;
            }
        }
        if (s.rows() <= SMALL_WEIGHT_ROWS) {
            f32 = allocate(n * 4);
            cuMemcpyHtoD(f32, Pointer.to(s.tensor().toFloats(s.firstElement(), (int) n)), n * 4);
        }
        return new CudaTensor(s.rows(), s.cols(), f32, rows16, parts, null);
    }

    /**
     * Weights of equal columns as one weight of 16-bit rows, their rows one after another (the fused q/k/v
     * projection); no fp32 copy (these are never small).
     */
    Tensor stacked(WeightSlice... slices) {
        int cols = slices[0].cols();
        int parts = weightParts(slices[0]);
        long rows = 0;
        for (WeightSlice s : slices) {
            if (s.cols() != cols || weightParts(s) != parts) {
                throw new IllegalArgumentException("stacked weights need equal columns and storage: "
                        + s.describe() + " beside " + slices[0].describe());
            }
            rows += s.rows();
        }
        CUdeviceptr rows16 = allocate(rows * cols * 2 * parts);
        try {
            long at = 0;
            for (WeightSlice s : slices) {
                uploadRows(s, s.firstElement(), s.rows(), cols, parts, rows16.withByteOffset(at * cols * 2 * parts));
                at += s.rows();
            }
        } catch (RuntimeException e) {  // a value fp16 cannot hold: nothing stays allocated
            GpuRuntime.free(rows16);
            throw e;
        }
        return new CudaTensor(Math.toIntExact(rows), cols, null, rows16, parts, null);
    }

    /**
     * A layer's dense experts ({@link CudaExperts}): gate and up rows interleaved in blocks of 8, and with wgmma at
     * one part per input, pre-tiled.
     */
    ExpertWeights dense(WeightSlice[] gate, WeightSlice[] up, WeightSlice[] down) {
        int e = gate.length;
        int ffn = gate[0].rows();
        int hidden = gate[0].cols();
        if (ffn % 8 != 0 || hidden % 8 != 0) {
            throw new IllegalArgumentException("the CUDA backend needs ffn and hidden sizes that are multiples of 8,"
                    + " got ffn " + ffn + " and hidden " + hidden + " (" + gate[0].describe() + ")");
        }
        int parts = weightParts(gate[0]);
        long expertGateUp = 2L * ffn * hidden * parts;
        long expertDown = (long) hidden * ffn * parts;
        CUdeviceptr gateUp = allocate(e * expertGateUp * 2);
        CUdeviceptr downSlab;
        try {
            downSlab = allocate(e * expertDown * 2);
        } catch (RuntimeException ex) {
            GpuRuntime.free(gateUp);
            throw ex;
        }
        try {
            for (int x = 0; x < e; x++) {
                // rows 16b..16b+7 = gate rows 8b..8b+7, rows 16b+8..16b+15 = up rows 8b..8b+7
                CUdeviceptr base = gateUp.withByteOffset(x * expertGateUp * 2);
                for (int b = 0; b < ffn / 8; b++) {
                    long rowBytes = (long) hidden * 2 * parts;
                    uploadRows(gate[x], gate[x].firstElement() + (long) b * 8 * hidden, 8, hidden, parts,
                            base.withByteOffset(16L * b * rowBytes));
                    uploadRows(up[x], up[x].firstElement() + (long) b * 8 * hidden, 8, hidden, parts,
                            base.withByteOffset((16L * b + 8) * rowBytes));
                }
                uploadRows(down[x], down[x].firstElement(), hidden, ffn, parts,
                        downSlab.withByteOffset(x * expertDown * 2));
            }
        } catch (RuntimeException ex) {  // a value fp16 cannot hold: nothing stays allocated
            GpuRuntime.free(gateUp);
            GpuRuntime.free(downSlab);
            throw ex;
        }
        if (!choice.runsWgmma() || precision == Precision.SPLIT_BF16) {
            return new CudaExperts(e, ffn, hidden, gateUp, downSlab, parts, false);
        }
        // wgmma on a Hopper, one part per input: the pre-tiled layout the bulk-copy kernels read (gemm_sm90.cu)
        CUdeviceptr gateUpTiled = null;
        try {
            gateUpTiled = tileDense(gateUp, e, 2 * ffn, hidden);
            CUdeviceptr downTiled = tileDense(downSlab, e, hidden, ffn);
            return new CudaExperts(e, ffn, hidden, gateUpTiled, downTiled, parts, true);
        } catch (RuntimeException ex) {
            if (gateUpTiled != null) {
                GpuRuntime.free(gateUpTiled);
            }
            throw ex;
        } finally {
            GpuRuntime.free(gateUp);
            GpuRuntime.free(downSlab);
        }
    }

    /** A weight [e][rows][cols] of 16-bit values copied into the pre-tiled layout of gemm_sm90.cu (128 x 64 blocks). */
    private CUdeviceptr tileDense(CUdeviceptr plain, int e, int rows, int cols) {
        int tiles = (int) blocks(rows, S90_W_BLOCK_ROWS);
        CUdeviceptr tiled = allocate((long) e * tiles * blocks(cols, S90_BK) * S90_W_BLOCK_BYTES);
        launcher.launch("tile_dense_sm90", blocks(cols, S90_BK), e * tiles, S90_W_BLOCK_ROWS, 0, plain, tiled, rows,
                cols, tiles);
        cuStreamSynchronize(launcher.stream());
        return tiled;
    }

    /** A layer's 2:4 experts ({@link CudaSparseExperts}): packed for mma.sp, pre-tiled for wgmma.sp. */
    ExpertWeights sparse24(Sparse24.Packed[] gate, Sparse24.Packed[] up, Sparse24.Packed[] down) {
        int e = gate.length;
        int ffn = gate[0].rows();
        int hidden = gate[0].cols();
        if (ffn % 32 != 0 || hidden % 32 != 0) {
            throw new IllegalArgumentException("2:4 sparse experts need ffn and hidden sizes that are multiples of 32,"
                    + " got ffn " + ffn + " and hidden " + hidden);
        }
        long guValues = 2L * ffn * (hidden / 2);
        long guMeta = 2L * ffn * (hidden / 32);
        long dValues = (long) hidden * (ffn / 2);
        long dMeta = (long) hidden * (ffn / 32);
        CUdeviceptr guv = allocate(e * guValues * 2);
        CUdeviceptr gum = allocate(e * guMeta * 4);
        CUdeviceptr dv = allocate(e * dValues * 2);
        CUdeviceptr dm = allocate(e * dMeta * 4);
        try {
            for (int x = 0; x < e; x++) {
                short[] values = new short[(int) guValues];
                int[] meta = new int[(int) guMeta];
                interleaveGateUpRows(toHalf(gate[x].values(), "2:4 gate values of expert " + x),
                        toHalf(up[x].values(), "2:4 up values of expert " + x), values, ffn, hidden / 2);
                interleaveGateUpRows(gate[x].meta(), up[x].meta(), meta, ffn, hidden / 32);
                cuMemcpyHtoD(guv.withByteOffset(x * guValues * 2), Pointer.to(values), guValues * 2);
                cuMemcpyHtoD(gum.withByteOffset(x * guMeta * 4), Pointer.to(meta), guMeta * 4);
                short[] d = toHalf(down[x].values(), "2:4 down values of expert " + x);
                cuMemcpyHtoD(dv.withByteOffset(x * dValues * 2), Pointer.to(d), dValues * 2);
                cuMemcpyHtoD(dm.withByteOffset(x * dMeta * 4), Pointer.to(down[x].meta()), dMeta * 4);
            }
        } catch (RuntimeException ex) {  // a value fp16 cannot hold: nothing stays allocated
            for (CUdeviceptr p : new CUdeviceptr[] {guv, gum, dv, dm}) {
                GpuRuntime.free(p);
            }
            throw ex;
        }
        if (!choice.runsWgmma()) {
            return new CudaSparseExperts(e, ffn, hidden, guv, gum, dv, dm);
        }
        long guTiled = tiledSparseBytes(e, 2 * ffn, hidden);
        long dTiled = tiledSparseBytes(e, hidden, ffn);
        CUdeviceptr gut = allocate(guTiled);
        CUdeviceptr dt = allocate(dTiled);
        tileSparse(guv, gum, gut, e, 2 * ffn, hidden);
        tileSparse(dv, dm, dt, e, hidden, ffn);
        cuStreamSynchronize(launcher.stream());
        for (CUdeviceptr packed : new CUdeviceptr[] {guv, gum, dv, dm}) {
            GpuRuntime.free(packed);
        }
        return new CudaSparseExperts(e, ffn, hidden, gut, dt, guTiled + dTiled, false);
    }

    /**
     * A layer's 128:2:8 experts pre-tiled for their own kernels on a Hopper (vnm_sm90.cu: the condensed 2:4 rows on
     * wgmma.sp, each adding into the row of its pair the slice keeps).
     */
    ExpertWeights vectorSparse(VectorSparse.Packed[] gate, VectorSparse.Packed[] up, VectorSparse.Packed[] down) {
        int e = gate.length;
        int ffn = gate[0].rows();
        int hidden = gate[0].cols();
        if (ffn % 32 != 0 || hidden % 32 != 0) {
            throw new IllegalArgumentException(VectorSparse.PATTERN + " sparse experts need ffn and hidden sizes that"
                    + " are multiples of 32, got ffn " + ffn + " and hidden " + hidden);
        }
        CUdeviceptr gateUp = null;
        CUdeviceptr downTiled = null;
        try {
            gateUp = uploadVectorSparse(interleaveGateUp(gate, up), "gate_up");
            downTiled = uploadVectorSparse(down, "down");
        } catch (RuntimeException ex) {  // a value fp16 cannot hold: nothing stays allocated
            if (gateUp != null) {
                GpuRuntime.free(gateUp);
            }
            throw ex;
        }
        long bytes = tiledVectorSparseBytes(e, ffn, hidden) + tiledVectorSparseBytes(e, hidden / 2, ffn);
        return new CudaSparseExperts(e, ffn, hidden, gateUp, downTiled, bytes, true);
    }

    /**
     * The layout the sparse gate+up kernels read (their SwiGLU epilogue holds gate and up of the same columns in one
     * thread): rows 16b..16b+7 of {@code out} are gate rows 8b..8b+7, rows 16b+8..16b+15 the up rows 8b..8b+7.
     * gate, up and out are arrays of one primitive type; gate and up hold {@code rows} rows of {@code rowLength}.
     */
    private static void interleaveGateUpRows(Object gate, Object up, Object out, int rows, int rowLength) {
        for (int b = 0; b < rows / 8; b++) {
            System.arraycopy(gate, 8 * b * rowLength, out, 16 * b * rowLength, 8 * rowLength);
            System.arraycopy(up, 8 * b * rowLength, out, (16 * b + 8) * rowLength, 8 * rowLength);
        }
    }

    /** Gate and up of each expert as one condensed matrix [ffn, hidden], interleaved as the 2:4 ones. */
    private static VectorSparse.Packed[] interleaveGateUp(VectorSparse.Packed[] gate, VectorSparse.Packed[] up) {
        VectorSparse.Packed[] out = new VectorSparse.Packed[gate.length];
        for (int x = 0; x < gate.length; x++) {
            Sparse24.Packed g = gate[x].condensed();
            Sparse24.Packed u = up[x].condensed();
            int rows = g.rows();  // ffn / 2 condensed rows each
            float[] values = new float[2 * g.values().length];
            int[] meta = new int[2 * g.meta().length];
            byte[] keep = new byte[2 * gate[x].keep().length];
            interleaveGateUpRows(g.values(), u.values(), values, rows, g.cols() / 2);
            interleaveGateUpRows(g.meta(), u.meta(), meta, rows, g.metaPerRow());
            interleaveGateUpRows(gate[x].keep(), up[x].keep(), keep, rows, gate[x].slices());
            out[x] = new VectorSparse.Packed(4 * rows, g.cols(), keep, new Sparse24.Packed(2 * rows, g.cols(), values, meta));
        }
        return out;
    }

    /** Uploads the condensed matrices [e][rows/2][cols] and returns them pre-tiled (tile_vnm_sm90). */
    private CUdeviceptr uploadVectorSparse(VectorSparse.Packed[] experts, String what) {
        int e = experts.length;
        int rows = experts[0].condensed().rows();
        int cols = experts[0].cols();
        int slices = experts[0].slices();
        long valueCount = (long) rows * (cols / 2);
        long metaCount = (long) rows * (cols / 32);
        long keepCount = (long) rows * slices;
        CUdeviceptr values = allocate(e * valueCount * 2);
        CUdeviceptr meta = allocate(e * metaCount * 4);
        CUdeviceptr keep = allocate(e * keepCount);
        try {
            for (int x = 0; x < e; x++) {
                Sparse24.Packed p = experts[x].condensed();
                short[] v = toHalf(p.values(), VectorSparse.PATTERN + " " + what + " values of expert " + x);
                cuMemcpyHtoD(values.withByteOffset(x * valueCount * 2), Pointer.to(v), valueCount * 2);
                cuMemcpyHtoD(meta.withByteOffset(x * metaCount * 4), Pointer.to(p.meta()), metaCount * 4);
                cuMemcpyHtoD(keep.withByteOffset(x * keepCount), Pointer.to(experts[x].keep()), keepCount);
            }
            int tiles = (int) blocks(rows, VN_ROWS);
            CUdeviceptr tiled = allocate(tiledVectorSparseBytes(e, rows, cols));
            launcher.launch("tile_vnm_sm90", slices, e * tiles, VN_ROWS, 0, values, meta, keep, tiled, rows, cols,
                    tiles);
            cuStreamSynchronize(launcher.stream());
            return tiled;
        } finally {
            for (CUdeviceptr p : new CUdeviceptr[] {values, meta, keep}) {
                GpuRuntime.free(p);
            }
        }
    }



    /** Bytes of a condensed 128:2:8 weight [e][rows][cols] pre-tiled: VN_ROWS-row x SP9_K-k blocks. */
    private static long tiledVectorSparseBytes(int e, int rows, int cols) {
        return (long) e * blocks(rows, VN_ROWS) * blocks(cols, SP9_K) * VN_W_BYTES;
    }

    /**
     * Bytes of a 2:4 weight [e][rows][cols] pre-tiled for the bulk-copy kernels: per expert and SP9_K-k stage, the
     * rows in SP9_HALF_ROWS-row blocks, as many as SP_ROWS-row tiles need (sparse24_sm90.cu, sp24_tile).
     */
    private static long tiledSparseBytes(int e, int rows, int cols) {
        return (long) e * blocks(rows, SP_ROWS) * blocks(cols, SP9_K) * SP9_W_BYTES;
    }

    private void tileSparse(CUdeviceptr values, CUdeviceptr meta, CUdeviceptr tiled, int e, int rows, int cols) {
        int halves = SP_ROWS / SP9_HALF_ROWS * (int) blocks(rows, SP_ROWS);
        launcher.launch("tile_sparse24_sm90", blocks(cols, SP9_K), e * halves, SP9_HALF_ROWS, 0, values, meta, tiled,
                rows, cols, halves);
    }

}
