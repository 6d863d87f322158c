package io.moescore.backend.cuda;

import static jcuda.driver.JCudaDriver.cuLaunchKernel;
import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
import static jcuda.driver.JCudaDriver.cuMemsetD32Async;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;

import io.moescore.backend.Backend;
import io.moescore.backend.DeviceOutOfMemoryException;
import io.moescore.backend.ExpertInputObserver;
import io.moescore.backend.ExpertWeights;
import io.moescore.backend.IntTensor;
import io.moescore.backend.LogProbs;
import io.moescore.backend.Precision;
import io.moescore.backend.Tensor;
import io.moescore.backend.TopK;
import io.moescore.backend.WeightSlice;
import io.moescore.routing.ExpertRouting;
import io.moescore.routing.Router;
import io.moescore.routing.TopKSoftmaxRouter;
import io.moescore.model.DType;
import io.moescore.model.SafeTensorsWriter;
import io.moescore.sparse.Sparse24;
import io.moescore.sparse.VectorSparse;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;
import jcuda.CudaException;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;
import jcuda.driver.CUresult;

/**
 * The forward pass on one GPU: every op a kernel of src/main/cuda, activations kept on the device between
 * ops, weights uploaded once. Thread-safe: each calling thread works on its own stream and memory pool.
 */
public final class CudaBackend implements Backend {
    /** Weights with at most this many rows keep an fp32 copy and multiply in fp32 (routers, gates, norms). */
    static final int SMALL_WEIGHT_ROWS = 256;
    /** Rows (tokens) per GEMM block, and output columns (weight rows) per block: BM and BN of gemm.cu. */
    private static final int GEMM_TILE = 128;
    private static final int GEMM_N_TILE = 256;
    /** Weight rows per block of the 2:4 kernels (SP_ROWS of sparse24.cu). */
    private static final int SPARSE_ROW_TILE = 256;
    private static final int ATTENTION_ROWS = 64;
    private static final int ATTENTION_KEYS = 32;
    /** sizeof(SpShared) in sparse24.cu: three stages of values, metadata and token tiles. */
    private static final int SPARSE_SHARED_BYTES = 3 * ((256 * 40 * 2) + (256 * 2 * 4) + (128 * 72 * 2));
    /** S90_W_BLOCK_BYTES in gemm_sm90.cu: one pre-tiled dense weight block (128 rows x 64 k, bf16). */
    private static final int DENSE_TILED_BLOCK_BYTES = 128 * 128;
    /** SP9_W_BYTES in sparse24_sm90.cu: one pre-tiled weight stage (256 rows x 128 k, values and metadata). */
    private static final int SPARSE_TILED_STAGE_BYTES = 2 * (128 * 128 + 128 * 16);
    /** SPARSE_SM90_SHARED_BYTES: three stages of pre-tiled weights and tokens, + 1024 (alignment), + mbarriers. */
    private static final int SPARSE_SM90_SHARED_BYTES = 3 * (SPARSE_TILED_STAGE_BYTES + 128 * 256) + 1024 + 64;
    /** VN_ROWS and VN_W_BYTES in vnm_sm90.cu: condensed rows per 128:2:8 block, one pre-tiled weight stage. */
    private static final int VECTOR_SPARSE_ROW_TILE = 128;
    private static final int VECTOR_SPARSE_TILED_STAGE_BYTES = 128 * 128 + 128 * 16 + 128;
    /**
     * VN_SHARED_BYTES: four stages of tokens (128 x 256 bytes) and weights, each rounded up to 1024 bytes, +
     * alignment, + mbarriers; the 128:2:8 kernels' and the 2:4 kernels' in 128-row tiles (vnm_sm90.cu).
     */
    private static final int VECTOR_SPARSE_SHARED_BYTES =
            4 * ((128 * 256 + VECTOR_SPARSE_TILED_STAGE_BYTES + 1023) / 1024 * 1024) + 1024 + 64;
    /** GEMM_SHARED_BYTES in gemm.cu: three stages of 128 x 32 A and 256 x 32 W tiles, rows padded to 40 bf16. */
    private static final int GEMM_SHARED_BYTES = 3 * (128 + 256) * 40 * 2;
    /** The lm_head step computes logits for at most this many (token, vocab) pairs at a time. */
    private static final long LOGITS_CHUNK_ELEMENTS = 64L << 20;
    /** Deterministic mode: vocabulary columns per lm_head chunk, whatever the token count. */
    private static final int DETERMINISTIC_LOGITS_CHUNK = 8192;

    private final GpuRuntime gpu;
    private final Precision precision;
    /** The 16-bit type the tensor cores multiply, as kernel names spell it: bf16 (bf16, split-bf16) or f16 (fp16). */
    private final String half;
    /** The kernel families this backend may run (Kernels), and the tuner that picks among them per shape. */
    private final Kernels kernels;
    private final KernelTuner tuner;
    /** Deterministic, batch-invariant scores (see {@link #CudaBackend(int, Precision, Kernels, boolean)}). */
    private final boolean deterministic;
    private final Map<String, CUdeviceptr> invFreqs = new ConcurrentHashMap<>();
    private volatile OpTimer timer;

    public CudaBackend(int deviceOrdinal) {
        this(deviceOrdinal, Precision.BF16);
    }

    public CudaBackend(int deviceOrdinal, Precision precision) {
        this(deviceOrdinal, precision, Kernels.TUNED);
    }

    /** @param kernels TUNED: the autotuner picks per shape; the others pin one kernel family (tests, benchmarks) */
    public CudaBackend(int deviceOrdinal, Precision precision, Kernels kernels) {
        this(deviceOrdinal, precision, kernels, false);
    }

    /**
     * @param deterministic batch-invariant scores: a sequence's are bit-identical whatever it is batched with
     *                      (same model, GPU architecture and precision): one kernel family whatever the shape
     *                      (TUNED becomes wgmma on a Hopper, mma.sync elsewhere), experts combined in expert order
     *                      instead of by atomics (an entries x hidden fp32 buffer more per layer), lm_head in
     *                      fixed vocabulary chunks. Every other kernel already computes a row from that row
     *                      alone, in an order that does not depend on the batch.
     */
    public CudaBackend(int deviceOrdinal, Precision precision, Kernels kernels, boolean deterministic) {
        gpu = GpuRuntime.forDevice(deviceOrdinal);
        this.precision = precision;
        this.half = precision == Precision.FP16 ? "f16" : "bf16";
        this.deterministic = deterministic;
        boolean hopper = gpu.computeCapability().equals("9.0");
        if ((kernels == Kernels.WGMMA || kernels == Kernels.WGMMA_N128) && !hopper) {
            throw new IllegalArgumentException("wgmma kernels need compute capability 9.0, not " + gpu.computeCapability());
        }
        Kernels fixed = hopper ? Kernels.WGMMA : Kernels.MMA_SYNC;
        this.kernels = kernels == Kernels.TUNED && (deterministic || !hopper) ? fixed : kernels;
        this.tuner = this.kernels == Kernels.TUNED ? KernelTuner.forModel(gpu.name()) : null;
    }

    /** Whether scores are deterministic and batch-invariant (the constructor says how). */
    public boolean deterministic() {
        return deterministic;
    }

    /** The dense GEMM kernels of a family (linear_bf16, experts_f16_gate_up, ...) this backend may run. */
    private List<String> gemmVariants(String family) {
        return switch (kernels) {
            case TUNED -> List.of(family + "_sm90", family + "_sm90_n128", family);
            case WGMMA -> List.of(family + "_sm90");
            case WGMMA_N128 -> List.of(family + "_sm90_n128");
            case MMA_SYNC -> List.of(family);
        };
    }

    /**
     * Whether this backend runs the sm_90a families (wgmma, wgmma.sp), which read expert weights (and, in bf16 and
     * fp16, the linear layers' weights) pre-tiled, rather than mma.sync / mma.sp over the plain and packed layouts
     * (what sm_80-89 run; pinned with MMA_SYNC on a Hopper too).
     */
    private boolean runsWgmma() {
        return kernels != Kernels.MMA_SYNC;  // TUNED and MMA_SYNC are the only families left off a Hopper
    }

    /** Weight rows per block of a dense GEMM kernel (BN of gemm.cu, BNT of gemm_sm90.cu). */
    private static int gemmTile(String kernel) {
        return kernel.endsWith("_n128") ? 128 : GEMM_N_TILE;
    }

    /** GEMM_SM90_SHARED_BYTES(BNT) of gemm_sm90.cu, or GEMM_SHARED_BYTES of gemm.cu. */
    private static int gemmSharedBytes(String kernel) {
        if (kernel.contains("_sm90t")) {  // + the mbarriers of the pre-tiled kernels
            return 4 * (128 + gemmTile(kernel)) * 128 + 1024 + 64;
        }
        return kernel.contains("_sm90") ? 4 * (128 + gemmTile(kernel)) * 128 + 1024 : GEMM_SHARED_BYTES;
    }

    /** The variant to run: the only one, or the tuner's pick for this shape (timing each on first sight). */
    private String choose(String shape, List<String> variants, Consumer<String> launch) {
        return tuner == null ? variants.get(0) : tuner.pick(shape, variants, launch, gpu.stream());
    }

    /** Which kernels the dense GEMMs use here. */
    public String gemmPath() {
        return switch (kernels) {
            case TUNED -> "tuned (wgmma 128x256, wgmma 128x128, mma.sync; wgmma over pre-tiled weights except in split-bf16)";
            case WGMMA -> "wgmma 128x256 (sm_90a)";
            case WGMMA_N128 -> "wgmma 128x128 (sm_90a)";
            case MMA_SYNC -> "mma.sync";
        };
    }

    /** Which kernels the 2:4 expert layers use here. */
    public String sparsePath() {
        return switch (kernels) {
            case TUNED -> "wgmma.sp, bulk-copied pre-tiled weights, tuned 256- or 128-row tiles (sm_90a)";
            case WGMMA -> "wgmma.sp, bulk-copied pre-tiled weights, 256-row tiles (sm_90a)";
            case WGMMA_N128 -> "wgmma.sp, bulk-copied pre-tiled weights, 128-row tiles (sm_90a)";
            case MMA_SYNC -> "mma.sp";
        };
    }

    public Precision precision() {
        return precision;
    }

    /** The autotuner's choices so far, shape -> kernel (empty where nothing is tuned). */
    public Map<String, String> tunedKernels() {
        return tuner == null ? Map.of() : tuner.choices();
    }

    /** 16-bit copies per weight row (gemm.cu, Precision): a lo part only at split-bf16, where bf16 cannot hold it. */
    private int weightParts(WeightSlice s) {
        return precision == Precision.SPLIT_BF16 && s.tensor().dtype() != DType.BF16 ? 2 : 1;
    }

    /** 16-bit copies per GEMM input row against a weight of wParts copies (gemm.cu, Precision). */
    private int inputParts(int wParts) {
        return precision == Precision.SPLIT_BF16 ? wParts + 1 : 1;
    }

    public GpuRuntime runtime() {
        return gpu;
    }

    /** Starts recording device time per op (for benchmarks). */
    public void startProfiling() {
        timer = new OpTimer();
    }

    /** Device milliseconds per op since profiling started or was last drained. */
    public Map<String, Double> drainProfile() {
        OpTimer t = timer;
        return t == null ? Map.of() : t.drain();
    }

    /** Runs an op, recording its device time when profiling is on. */
    private void timed(String op, Runnable body) {
        timedValue(op, () -> {
            body.run();
            return null;
        });
    }

    private <T> T timedValue(String op, java.util.function.Supplier<T> body) {
        return guarded(op, () -> {
            OpTimer t = timer;
            Object span = t == null ? null : t.begin(op, gpu.stream());
            try {
                return body.get();
            } finally {
                if (span != null) {
                    OpTimer.end(span, gpu.stream());
                }
            }
        });
    }

    /**
     * Runs device work on a usable context: an unrecoverable CUDA error (here, or in an earlier launch that it
     * surfaces) becomes a {@link io.moescore.backend.GpuFaultException} and leaves the runtime broken, so no
     * later call touches the device (GpuRuntime.fault).
     */
    private <T> T guarded(String op, java.util.function.Supplier<T> body) {
        gpu.checkUsable();
        try {
            return body.get();
        } catch (CudaException e) {
            throw gpu.fault(e, op);
        }
    }

    @Override
    public String deviceName() {
        return gpu.name() + " (cuda:" + gpu.ordinal() + ", sm_" + gpu.computeCapability().replace(".", "") + ")";
    }

    // ---- memory -------------------------------------------------------------------------------------------

    private CUdeviceptr allocateWeight(long bytes) {
        gpu.bind();
        CUdeviceptr p = new CUdeviceptr();
        try {
            cuMemAlloc(p, Math.max(bytes, 4));
        } catch (CudaException e) {
            if (e.getMessage().contains(CUresult.stringFor(CUresult.CUDA_ERROR_OUT_OF_MEMORY))) {
                throw new DeviceOutOfMemoryException("out of GPU memory on " + gpu.name()
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

    @Override
    public Tensor weight(WeightSlice s) {
        long n = (long) s.rows() * s.cols();
        int parts = weightParts(s);
        CUdeviceptr rows16 = null;
        CUdeviceptr f32 = null;
        if (s.rows() > 1) {
            rows16 = allocateWeight(n * 2 * parts);
            try {
                uploadRows(s, s.firstElement(), s.rows(), s.cols(), parts, rows16);
            } catch (RuntimeException e) {  // a value fp16 cannot hold: nothing stays allocated
                GpuRuntime.free(rows16);
                throw e;
            }
        }
        if (s.rows() <= SMALL_WEIGHT_ROWS) {
            f32 = allocateWeight(n * 4);
            cuMemcpyHtoD(f32, Pointer.to(s.tensor().toFloats(s.firstElement(), (int) n)), n * 4);
        }
        return new CudaTensor(s.rows(), s.cols(), f32, rows16, parts, null);
    }

    @Override
    public ExpertWeights expertWeights(WeightSlice[] gate, WeightSlice[] up, WeightSlice[] down) {
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
        CUdeviceptr gateUp = allocateWeight(e * expertGateUp * 2);
        CUdeviceptr downSlab;
        try {
            downSlab = allocateWeight(e * expertDown * 2);
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
        if (!runsWgmma() || precision == Precision.SPLIT_BF16) {
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
        int tiles = (int) blocks(rows, 128);
        CUdeviceptr tiled = allocateWeight((long) e * tiles * blocks(cols, 64) * DENSE_TILED_BLOCK_BYTES);
        launch("tile_dense_sm90", blocks(cols, 64), e * tiles, 128, 0, plain, tiled, rows, cols, tiles);
        cuStreamSynchronize(gpu.stream());
        return tiled;
    }

    @Override
    public ExpertWeights sparseExpertWeights(Sparse24.Packed[] gate, Sparse24.Packed[] up, Sparse24.Packed[] down) {
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
        CUdeviceptr guv = allocateWeight(e * guValues * 2);
        CUdeviceptr gum = allocateWeight(e * guMeta * 4);
        CUdeviceptr dv = allocateWeight(e * dValues * 2);
        CUdeviceptr dm = allocateWeight(e * dMeta * 4);
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
        if (!runsWgmma()) {
            return new CudaSparseExperts(e, ffn, hidden, guv, gum, dv, dm);
        }
        long guTiled = tiledSparseBytes(e, 2 * ffn, hidden);
        long dTiled = tiledSparseBytes(e, hidden, ffn);
        CUdeviceptr gut = allocateWeight(guTiled);
        CUdeviceptr dt = allocateWeight(dTiled);
        tileSparse(guv, gum, gut, e, 2 * ffn, hidden);
        tileSparse(dv, dm, dt, e, hidden, ffn);
        cuStreamSynchronize(gpu.stream());
        for (CUdeviceptr packed : new CUdeviceptr[] {guv, gum, dv, dm}) {
            GpuRuntime.free(packed);
        }
        return new CudaSparseExperts(e, ffn, hidden, gut, dt, guTiled + dTiled, false);
    }

    /**
     * 128:2:8 experts run on their own kernels on a Hopper (vnm_sm90.cu: the condensed 2:4 rows on wgmma.sp, each
     * adding into the row of its pair the slice keeps); elsewhere as the 2:4 matrices they also are.
     */
    @Override
    public ExpertWeights vectorSparseExpertWeights(VectorSparse.Packed[] gate, VectorSparse.Packed[] up,
                                                   VectorSparse.Packed[] down) {
        if (!runsWgmma()) {
            return Backend.super.vectorSparseExpertWeights(gate, up, down);
        }
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
        CUdeviceptr values = allocateWeight(e * valueCount * 2);
        CUdeviceptr meta = allocateWeight(e * metaCount * 4);
        CUdeviceptr keep = allocateWeight(e * keepCount);
        try {
            for (int x = 0; x < e; x++) {
                Sparse24.Packed p = experts[x].condensed();
                short[] v = toHalf(p.values(), VectorSparse.PATTERN + " " + what + " values of expert " + x);
                cuMemcpyHtoD(values.withByteOffset(x * valueCount * 2), Pointer.to(v), valueCount * 2);
                cuMemcpyHtoD(meta.withByteOffset(x * metaCount * 4), Pointer.to(p.meta()), metaCount * 4);
                cuMemcpyHtoD(keep.withByteOffset(x * keepCount), Pointer.to(experts[x].keep()), keepCount);
            }
            int tiles = (int) blocks(rows, VECTOR_SPARSE_ROW_TILE);
            CUdeviceptr tiled = allocateWeight(tiledVectorSparseBytes(e, rows, cols));
            launch("tile_vnm_sm90", slices, e * tiles, VECTOR_SPARSE_ROW_TILE, 0, values, meta, keep, tiled, rows, cols,
                    tiles);
            cuStreamSynchronize(gpu.stream());
            return tiled;
        } finally {
            for (CUdeviceptr p : new CUdeviceptr[] {values, meta, keep}) {
                GpuRuntime.free(p);
            }
        }
    }

    /**
     * The expert kernels (gate_up; down is named alike) for sparse weights: wgmma.sp on a Hopper's pre-tiled weights
     * (sparse24_sm90.cu: 256-row tiles; vnm_sm90.cu: 128:2:8, and 2:4 in 128-row tiles, _n128), the tuner picking
     * the 2:4 tile per shape; mma.sp on packed ones (sparse24.cu).
     */
    private List<String> sparseVariants(CudaSparseExperts w) {
        String prefix = "experts_" + half + "_gate_up_";
        if (w.vectorSparse) {
            return List.of(prefix + "vnm_sm90");
        }
        if (!w.tiled()) {
            return List.of(prefix + "sp24");
        }
        return switch (kernels) {
            case TUNED -> List.of(prefix + "sp24_sm90", prefix + "sp24_sm90_n128");
            case WGMMA_N128 -> List.of(prefix + "sp24_sm90_n128");
            default -> List.of(prefix + "sp24_sm90");
        };
    }

    private static int sparseSharedBytes(String kernel) {
        if (kernel.contains("_vnm_") || kernel.endsWith("_n128")) {
            return VECTOR_SPARSE_SHARED_BYTES;
        }
        return kernel.endsWith("_sm90") ? SPARSE_SM90_SHARED_BYTES : SPARSE_SHARED_BYTES;
    }

    /** Bytes of a condensed 128:2:8 weight [e][rows][cols] pre-tiled: 128-row x 128-k blocks. */
    private static long tiledVectorSparseBytes(int e, int rows, int cols) {
        return (long) e * blocks(rows, VECTOR_SPARSE_ROW_TILE) * blocks(cols, 128) * VECTOR_SPARSE_TILED_STAGE_BYTES;
    }

    /**
     * Bytes of a 2:4 weight [e][rows][cols] pre-tiled for the bulk-copy kernels: per expert and 128-k stage, the rows
     * in 128-row blocks, as many as 256-row tiles need (sparse24_sm90.cu, sp24_tile).
     */
    private static long tiledSparseBytes(int e, int rows, int cols) {
        return (long) e * blocks(rows, SPARSE_ROW_TILE) * blocks(cols, 128) * SPARSE_TILED_STAGE_BYTES;
    }

    private void tileSparse(CUdeviceptr values, CUdeviceptr meta, CUdeviceptr tiled, int e, int rows, int cols) {
        int halves = 2 * (int) blocks(rows, SPARSE_ROW_TILE);
        launch("tile_sparse24_sm90", blocks(cols, 128), e * halves, 128, 0, values, meta, tiled, rows, cols, halves);
    }

    @Override
    public Tensor activation(int rows, int cols) {
        DevicePool pool = gpu.pool();
        return new CudaTensor(rows, cols, pool.allocate((long) rows * cols * 4), null, 1, pool);
    }

    @Override
    public Tensor activation(float[] values, int rows, int cols) {
        if ((long) rows * cols != values.length) {
            throw new IllegalArgumentException(rows + " x " + cols + " activation from " + values.length + " values");
        }
        return guarded("upload", () -> {
            CudaTensor t = (CudaTensor) activation(rows, cols);
            cuStreamSynchronize(gpu.stream());
            cuMemcpyHtoD(t.f32, Pointer.to(values), values.length * 4L);
            return t;
        });
    }

    private CudaTensor.Ints upload(int[] values) {
        DevicePool pool = gpu.pool();
        CUdeviceptr p = pool.allocate(Math.max(4L, values.length * 4L));
        // The stream may still be reading a block this pool handed out before: wait, then copy.
        cuStreamSynchronize(gpu.stream());
        if (values.length > 0) {
            cuMemcpyHtoD(p, Pointer.to(values), values.length * 4L);
        }
        return new CudaTensor.Ints(values, p, pool);
    }

    @Override
    public IntTensor ints(int[] values) {
        return guarded("upload", () -> upload(values.clone()));
    }

    @Override
    public float[] toHost(Tensor t) {
        CudaTensor c = CudaTensor.of(t);
        float[] out = new float[(int) c.elements()];
        return guarded("download", () -> {
            cuStreamSynchronize(gpu.stream());
            cuMemcpyDtoH(Pointer.to(out), c.requireF32("toHost"), out.length * 4L);
            return out;
        });
    }

    // ---- kernel launches ----------------------------------------------------------------------------------

    private static final CUdeviceptr NULL = new CUdeviceptr();

    private void launch(String kernel, long gridX, int gridY, int block, int sharedBytes, Object... args) {
        if (gridX == 0 || gridY == 0) {
            return;
        }
        if (gridX > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(kernel + ": grid of " + gridX + " blocks is too large");
        }
        CUfunction f = gpu.function(kernel);
        Pointer[] params = new Pointer[args.length];
        for (int i = 0; i < args.length; i++) {
            Object a = args[i];
            if (a == null) {
                params[i] = Pointer.to(NULL);
            } else if (a instanceof CUdeviceptr p) {
                params[i] = Pointer.to(p);
            } else if (a instanceof Integer v) {
                params[i] = Pointer.to(new int[] {v});
            } else if (a instanceof Long v) {
                params[i] = Pointer.to(new long[] {v});
            } else if (a instanceof Float v) {
                params[i] = Pointer.to(new float[] {v});
            } else {
                throw new IllegalArgumentException("kernel argument of type " + a.getClass());
            }
        }
        cuLaunchKernel(f, (int) gridX, gridY, 1, block, 1, 1, sharedBytes, gpu.stream(), Pointer.to(params), null);
    }

    private static long blocks(long n, int per) {
        return (n + per - 1) / per;
    }

    // ---- the ops ------------------------------------------------------------------------------------------

    @Override
    public void embed(Tensor table, IntTensor ids, Tensor out) {
        timed("embed", () -> embedOp(table, ids, out));
    }

    private void embedOp(Tensor table, IntTensor ids, Tensor out) {
        CudaTensor t = CudaTensor.of(table);
        CudaTensor o = CudaTensor.of(out);
        launch("embed_" + half, ids.length(), 1, 256, 0, t.half, CudaTensor.Ints.of(ids).device, o.f32, ids.length(),
                t.cols, t.parts);
    }

    @Override
    public void rmsNorm(Tensor x, Tensor weight, int groupSize, float eps, Tensor out) {
        timed("rmsNorm", () -> rmsNormOp(x, weight, groupSize, eps, out));
    }

    private void rmsNormOp(Tensor x, Tensor weight, int groupSize, float eps, Tensor out) {
        CudaTensor in = CudaTensor.of(x);
        CudaTensor w = CudaTensor.of(weight);
        if (w.cols != groupSize || in.cols % groupSize != 0) {
            throw new IllegalArgumentException("rmsNorm over groups of " + groupSize + " of " + in.cols
                    + " columns with " + w.cols + " weights");
        }
        long groups = in.elements() / groupSize;
        launch("rmsnorm_f32", groups, 1, groupSize >= 1024 ? 256 : 128, 0, in.f32, w.requireF32("rmsNorm"),
                CudaTensor.of(out).f32, (int) groups, groupSize, eps);
    }

    @Override
    public void linear(Tensor x, Tensor w, Tensor bias, Tensor out) {
        timed("linear", () -> linearOp(x, w, bias, out));
    }

    private void linearOp(Tensor x, Tensor w, Tensor bias, Tensor out) {
        CudaTensor in = CudaTensor.of(x);
        CudaTensor weights = CudaTensor.of(w);
        CudaTensor o = CudaTensor.of(out);
        if (weights.cols != in.cols || o.rows != in.rows || o.cols != weights.rows) {
            throw new IllegalArgumentException("linear: x " + in.rows + "x" + in.cols + ", w " + weights.rows + "x"
                    + weights.cols + ", out " + o.rows + "x" + o.cols);
        }
        CUdeviceptr b = bias == null ? null : CudaTensor.of(bias).requireF32("bias");
        if (weights.f32 != null) {
            launch("linear_small_f32", blocks((long) in.rows * weights.rows, 8), 1, 256, 0, in.f32, weights.f32, b,
                    o.f32, in.rows, weights.rows, in.cols);
            return;
        }
        DevicePool pool = gpu.pool();
        int aParts = inputParts(weights.parts);
        CUdeviceptr xb = gemmInput(in, aParts, pool);
        try {
            if (linearTiled(weights)) {
                gemmTiled(xb, tiledWeight(weights), b, o.f32, in.rows, weights.rows, in.cols);
            } else {
                gemm(xb, weights.half, b, o.f32, in.rows, weights.rows, in.cols, aParts, weights.parts);
            }
        } finally {
            pool.release(xb, in.elements() * 2 * aParts);
        }
    }

    /**
     * Whether a linear layer runs on the bulk-copy kernels over a pre-tiled copy of its weight: wgmma on a Hopper
     * with one part per input (bf16 or fp16 precision). The copy is made on the weight's first use and kept beside
     * the plain rows, which the embedding (tied to lm_head in some models) and the other kernel families read.
     */
    private boolean linearTiled(CudaTensor w) {
        return runsWgmma() && precision != Precision.SPLIT_BF16 && w.parts == 1 && w.half != null && w.cols % 8 == 0;
    }

    private CUdeviceptr tiledWeight(CudaTensor w) {
        return w.tiled(t -> tileDense(t.half, 1, t.rows, t.cols));
    }

    /** out = a w^T (+ bias) over pre-tiled w (n rows, k columns): the linear_T_sm90t kernels, tuned per shape. */
    private void gemmTiled(CUdeviceptr a, CUdeviceptr wTiled, CUdeviceptr bias, CUdeviceptr out, int m, int n, int k) {
        Consumer<String> run = kernel -> {
            gpu.allowSharedMemory(gpu.function(kernel), gemmSharedBytes(kernel));
            launch(kernel, blocks(m, GEMM_TILE), (int) blocks(n, gemmTile(kernel)), 256, gemmSharedBytes(kernel), a,
                    wTiled, bias, out, m, n, k);
        };
        List<String> variants = gemmVariants("linear_" + half).stream().filter(v -> v.contains("_sm90"))
                .map(v -> v.replace("_sm90", "_sm90t")).toList();
        run.accept(choose("linear " + KernelTuner.bucket(m) + "x" + n + "x" + k + " tiled" + tunedType(), variants, run));
    }

    /**
     * The tuner's shape keys name the operand type beside the shape when it is not bf16, so bf16 and fp16 picks
     * never evict each other.
     */
    private String tunedType() {
        return precision == Precision.FP16 ? " fp16" : "";
    }

    /** An activation as GEMM input rows of aParts 16-bit copies (release with elements() * 2 * aParts bytes). */
    private CUdeviceptr gemmInput(CudaTensor x, int aParts, DevicePool pool) {
        CUdeviceptr xb = pool.allocate(x.elements() * 2 * aParts);
        launch("to_" + half + "_parts", blocks(x.elements(), 256), 1, 256, 0, x.f32, xb, (long) x.rows, x.cols, aParts);
        return xb;
    }

    /** out = a w^T over k columns, a in rows of aParts copies, w in rows of wParts copies (gemm.cu, Precision). */
    private void gemm(CUdeviceptr a, CUdeviceptr w, CUdeviceptr bias, CUdeviceptr out, int m, int n, int k,
                      int aParts, int wParts) {
        if (k % 8 != 0) {
            throw new IllegalArgumentException("the CUDA backend needs inner dimensions that are multiples of 8, got " + k);
        }
        Consumer<String> run = kernel -> {
            gpu.allowSharedMemory(gpu.function(kernel), gemmSharedBytes(kernel));
            launch(kernel, blocks(m, GEMM_TILE), (int) blocks(n, gemmTile(kernel)), 256, gemmSharedBytes(kernel), a,
                    w, bias, out, m, n, k * aParts, k * wParts);
        };
        run.accept(choose("linear " + KernelTuner.bucket(m) + "x" + n + "x" + k + " parts " + aParts + "/" + wParts
                + tunedType(), gemmVariants("linear_" + half), run));
    }

    @Override
    public void clamp(Tensor x, float limit) {
        timed("clamp", () -> clampOp(x, limit));
    }

    private void clampOp(Tensor x, float limit) {
        CudaTensor t = CudaTensor.of(x);
        launch("clamp_f32", blocks(t.elements(), 256), 1, 256, 0, t.f32, t.elements(), limit);
    }

    @Override
    public void rope(Tensor x, int headDim, IntTensor positions, double theta) {
        timed("rope", () -> ropeOp(x, headDim, positions, theta));
    }

    private void ropeOp(Tensor x, int headDim, IntTensor positions, double theta) {
        CudaTensor t = CudaTensor.of(x);
        CUdeviceptr inv = invFreqs.computeIfAbsent(headDim + "/" + theta, key -> {
            float[] f = new float[headDim / 2];
            for (int i = 0; i < f.length; i++) {
                f[i] = (float) (1.0 / Math.pow(theta, (float) (2 * i) / headDim)); // as CpuBackend and transformers
            }
            CUdeviceptr p = allocateWeight(f.length * 4L);
            cuMemcpyHtoD(p, Pointer.to(f), f.length * 4L);
            return p;
        });
        long items = (long) t.rows * (t.cols / headDim) * (headDim / 2);
        launch("rope_f32", blocks(items, 256), 1, 256, 0, t.f32, CudaTensor.Ints.of(positions).device, inv, t.rows,
                t.cols, headDim);
    }

    @Override
    public void attention(Tensor q, Tensor k, Tensor v, IntTensor seqOffsets, int numHeads, int numKvHeads,
                          int headDim, int window, Tensor out) {
        timed("attention", () -> attentionOp(q, k, v, seqOffsets, numHeads, numKvHeads, headDim, window, out));
    }

    private void attentionOp(Tensor q, Tensor k, Tensor v, IntTensor seqOffsets, int numHeads, int numKvHeads,
                          int headDim, int window, Tensor out) {
        if (headDim > 256 || headDim % 8 != 0) {
            throw new IllegalArgumentException("the CUDA attention kernel supports head_dim up to 256 and a multiple "
                    + "of 8, got " + headDim);
        }
        int[] offsets = CudaTensor.Ints.of(seqOffsets).host;
        List<Integer> tiles = new ArrayList<>();
        for (int s = 0; s + 1 < offsets.length; s++) {
            for (int q0 = offsets[s]; q0 < offsets[s + 1]; q0 += ATTENTION_ROWS) {
                tiles.add(offsets[s]);
                tiles.add(offsets[s + 1]);
                tiles.add(q0);
            }
        }
        // bf16, fp16: tensor cores (attention_tc.cu) up to head_dim 128; split-bf16 and larger heads: fp32 (attention.cu)
        boolean tensorCores = precision != Precision.SPLIT_BF16 && headDim <= 128;
        int padded = headDim <= 32 ? 32 : headDim <= 64 ? 64 : headDim <= 128 ? 128 : 256;
        String kernel = (tensorCores ? "attention_" + half + "_d" : "attention_f32_d") + padded;
        int shared = tensorCores ? 3 * ATTENTION_ROWS * (padded + 8) * 2 : 2 * ATTENTION_KEYS * headDim * 4;
        int threads = tensorCores ? 128 : 2 * ATTENTION_ROWS;
        if (shared > 48 * 1024) {
            gpu.allowSharedMemory(gpu.function(kernel), shared);
        }
        try (CudaTensor.Ints tileList = upload(tiles.stream().mapToInt(Integer::intValue).toArray())) {
            launch(kernel, tiles.size() / 3, numHeads, threads, shared, CudaTensor.of(q).f32,
                    CudaTensor.of(k).f32, CudaTensor.of(v).f32, CudaTensor.of(out).f32, tileList.device, numHeads,
                    numKvHeads, headDim, window, (float) (1.0 / Math.sqrt(headDim)));
        }
    }

    @Override
    public void addInPlace(Tensor acc, Tensor x) {
        timed("addInPlace", () -> addInPlaceOp(acc, x));
    }

    private void addInPlaceOp(Tensor acc, Tensor x) {
        CudaTensor a = CudaTensor.of(acc);
        launch("add_f32", blocks(a.elements(), 256), 1, 256, 0, a.f32, CudaTensor.of(x).f32, a.elements());
    }

    @Override
    public ExpertRouting route(Tensor routerLogits, Router router) {
        return timedValue("route", () -> routeOp(routerLogits, router));
    }

    private ExpertRouting routeOp(Tensor routerLogits, Router router) {
        if (!(router instanceof TopKSoftmaxRouter topK)) {
            throw new UnsupportedOperationException("the CUDA backend implements the top-k softmax router only, not "
                    + router.getClass().getSimpleName());
        }
        CudaTensor logits = CudaTensor.of(routerLogits);
        int t = logits.rows;
        int e = logits.cols;
        int k = topK.k();
        if (k > 16) {
            throw new IllegalArgumentException("the CUDA router supports top-k up to 16, got " + k);
        }
        DevicePool pool = gpu.pool();
        long entries = (long) t * k;
        CUdeviceptr chosen = pool.allocate(entries * 4);
        CUdeviceptr weights = pool.allocate(entries * 4);
        CUdeviceptr counts = pool.allocate(e * 4L);
        CUdeviceptr offsets = pool.allocate((e + 1) * 4L);
        CUdeviceptr tokens = pool.allocate(entries * 4);
        CUdeviceptr gates = pool.allocate(entries * 4);
        launch("router_topk_softmax", blocks(t, 8), 1, 256, 0, logits.f32, t, e, k, topK.renormalize() ? 1 : 0,
                chosen, weights);
        launch("route_count", e, 1, 256, 0, chosen, t, k, counts);
        launch("route_offsets", 1, 1, 32, 0, counts, e, offsets);
        launch("route_fill", e, 1, 256, 0, chosen, weights, t, k, offsets, tokens, gates);
        int[] hostCounts = new int[e];
        cuStreamSynchronize(gpu.stream());
        cuMemcpyDtoH(Pointer.to(hostCounts), counts, e * 4L);
        pool.release(weights, entries * 4);
        pool.release(counts, e * 4L);
        if (java.util.Arrays.stream(hostCounts).asLongStream().sum() != entries) {  // every row to k experts, always
            for (CUdeviceptr p : new CUdeviceptr[] {chosen, tokens, gates}) {
                pool.release(p, entries * 4);
            }
            pool.release(offsets, (e + 1) * 4L);
            throw new IllegalStateException("router_topk_softmax routed " + java.util.Arrays.stream(hostCounts).sum()
                    + " of " + entries + " token-expert pairs");
        }
        return new CudaExpertRouting(e, (int) entries, offsets, tokens, gates, chosen, k, hostCounts, () -> {
            pool.release(chosen, entries * 4);
            pool.release(offsets, (e + 1) * 4L);
            pool.release(tokens, entries * 4);
            pool.release(gates, entries * 4);
        });
    }

    @Override
    public void experts(Tensor x, ExpertRouting routing, ExpertWeights weights, Tensor out) {
        timed("experts", () -> expertsOp(x, routing, weights, out));
    }

    private void expertsOp(Tensor x, ExpertRouting routing, ExpertWeights weights, Tensor out) {
        CudaExpertRouting r = (CudaExpertRouting) routing;
        CombineOrder combine = deterministic ? new CombineOrder(r.chosen, r.k) : null;
        if (weights instanceof CudaSparseExperts sparse) {
            runSparseExperts(CudaTensor.of(x), r.offsets, r.tokens, r.gates, r.tokensPerExpert(), sparse,
                    CudaTensor.of(out), combine);
            return;
        }
        runExperts(CudaTensor.of(x), r.offsets, r.tokens, r.gates, r.tokensPerExpert(), (CudaExperts) weights,
                CudaTensor.of(out), combine, null);
    }

    /**
     * {@link #experts} on dense experts, then their inputs downloaded for {@code seen}: x as the fp32 hidden states,
     * the SwiGLU products as the gate/up kernel stored them for down (bf16 or fp16; hi + lo at split-bf16), whichever layout
     * ({@link ExpertIntermediate}).
     */
    @Override
    public void experts(Tensor x, ExpertRouting routing, ExpertWeights weights, Tensor out, ExpertInputObserver seen) {
        if (seen == null) {
            experts(x, routing, weights, out);
            return;
        }
        if (!(weights instanceof CudaExperts dense)) {
            throw new UnsupportedOperationException("calibration on " + deviceName()
                    + " needs dense expert weights, not a 2:4 checkpoint");
        }
        CudaExpertRouting r = (CudaExpertRouting) routing;
        CombineOrder combine = deterministic ? new CombineOrder(r.chosen, r.k) : null;
        short[][] inter = new short[1][];
        int[] tokens = new int[r.entries];
        timed("experts", () -> runExperts(CudaTensor.of(x), r.offsets, r.tokens, r.gates, r.tokensPerExpert(), dense,
                CudaTensor.of(out), combine, (device, bytes) -> {
                    inter[0] = new short[Math.toIntExact(bytes / 2)];
                    cuStreamSynchronize(gpu.stream());
                    cuMemcpyDtoH(Pointer.to(inter[0]), device, bytes);
                    cuMemcpyDtoH(Pointer.to(tokens), r.tokens, tokens.length * 4L);
                }));
        float[] hidden = toHost(x);
        int[] counts = r.tokensPerExpert();
        float[][] swiglu = inter[0] == null ? new float[counts.length][0]
                : ExpertIntermediate.swiglu(inter[0], counts, dense.ffn, inputParts(dense.parts), dense.tiled,
                        precision == Precision.FP16);
        for (int e = 0, from = 0; e < counts.length; from += counts[e], e++) {
            seen.observe(e, hidden, java.util.Arrays.copyOfRange(tokens, from, from + counts[e]), dense.hidden,
                    swiglu[e], dense.ffn);
        }
    }

    /** Reads the expert intermediate (device pointer, bytes) before it is released. */
    private interface InterTap {
        void read(CUdeviceptr inter, long bytes);
    }

    @Override
    public void ffn(Tensor x, ExpertWeights weights, Tensor out) {
        timed("ffn", () -> ffnOp(x, weights, out));
    }

    private void ffnOp(Tensor x, ExpertWeights weights, Tensor out) {
        CudaTensor in = CudaTensor.of(x);
        DevicePool pool = gpu.pool();
        int t = in.rows;
        CUdeviceptr tokens = pool.allocate(Math.max(4L, t * 4L));
        CUdeviceptr gates = pool.allocate(Math.max(4L, t * 4L));
        launch("route_identity", blocks(t, 256), 1, 256, 0, t, tokens, gates);
        try (CudaTensor.Ints offsets = upload(new int[] {0, t})) {
            // one entry per token: its single atomicAdd onto zero is exact, batch-invariant already
            runExperts(in, offsets.device, tokens, gates, new int[] {t}, (CudaExperts) weights, CudaTensor.of(out),
                    null, null);
        } finally {
            pool.release(tokens, Math.max(4L, t * 4L));
            pool.release(gates, Math.max(4L, t * 4L));
        }
    }

    /** Each token's chosen experts ([tokens, k]), for combining expert outputs in expert order. */
    private record CombineOrder(CUdeviceptr chosen, int k) {
    }

    /**
     * The down projections' combine: atomicAdd into out (combine null), or, batch-invariant, a store per entry that
     * combine_expert_outputs then sums per token in expert order. Returns the per-entry buffer to pass to the down
     * kernel (null for atomics); {@link #finishCombine} sums it, the caller releases it.
     */
    private CUdeviceptr startCombine(CombineOrder combine, long entries, int h) {
        return combine == null ? null : gpu.pool().allocate(entries * h * 4);
    }

    private void finishCombine(CombineOrder combine, CUdeviceptr perEntry, CUdeviceptr offsets, CUdeviceptr tokens,
                               CudaTensor out) {
        if (combine != null) {
            launch("combine_expert_outputs", out.rows, 1, 256, 0, perEntry, combine.chosen(), offsets, tokens,
                    out.f32, out.rows, combine.k(), out.cols);
        }
    }

    /**
     * The grouped expert launches: gate+up with SwiGLU into 16-bit rows per entry, then down with combine. interTap
     * (null: none) reads those rows ({@link ExpertIntermediate}'s layouts) before they are released.
     */
    private void runExperts(CudaTensor x, CUdeviceptr offsets, CUdeviceptr tokens, CUdeviceptr gates, int[] counts,
                            CudaExperts w, CudaTensor out, CombineOrder combine, InterTap interTap) {
        int h = w.hidden;
        int f = w.ffn;
        long entries = java.util.Arrays.stream(counts).asLongStream().sum();
        if (entries == 0) {  // otherwise each launch below zeroes out before its combine adds into it
            cuMemsetD32Async(out.f32, 0, out.elements(), gpu.stream());
            return;
        }
        int[] work = workList(counts);
        DevicePool pool = gpu.pool();
        int aParts = inputParts(w.parts);
        // the intermediate: [entries, F x aParts] 16-bit, or with pre-tiled weights tiled per work item as the down
        // kernel's activation stages (128 rows x 64 columns, gemm_sm90.cu), columns padded to a multiple of 64
        long interBytes = w.tiled ? (long) (work.length / 2) * blocks(f, 64) * 128 * 64 * 2 : entries * f * 2 * aParts;
        CUdeviceptr inter = pool.allocate(interBytes);
        CUdeviceptr xb = gemmInput(x, aParts, pool);
        CUdeviceptr perEntry = startCombine(combine, entries, h);
        try (CudaTensor.Ints workList = upload(work)) {
            int items = work.length / 2;
            Consumer<String> run = gateUp -> {
                String down = gateUp.replace("gate_up", "down");
                int shared = gemmSharedBytes(gateUp);
                gpu.allowSharedMemory(gpu.function(gateUp), shared);
                gpu.allowSharedMemory(gpu.function(down), shared);
                cuMemsetD32Async(out.f32, 0, out.elements(), gpu.stream());
                if (w.tiled && f % 64 != 0) {  // padding columns meet zero weights: no NaN bit patterns there
                    cuMemsetD32Async(inter, 0, interBytes / 4, gpu.stream());
                }
                launch(gateUp, items, (int) blocks(2L * f, gemmTile(gateUp)), 256, shared, xb, tokens, offsets,
                        workList.device, w.gateUp, inter, f, h, aParts, w.parts);
                launch(down, items, (int) blocks(h, gemmTile(down)), 256, shared, inter, tokens, gates, offsets,
                        workList.device, w.down, out.f32, perEntry, h, f, aParts, w.parts);
            };
            // pre-tiled weights: the wgmma kernels that read them (_sm90t: bulk copies), never mma.sync
            String family = "experts_" + half + "_gate_up";
            List<String> variants = w.tiled ? gemmVariants(family).stream().filter(v -> v.contains("_sm90"))
                    .map(v -> v.replace("_sm90", "_sm90t")).toList() : gemmVariants(family);
            run.accept(choose("experts " + counts.length + "x" + f + "x" + h + " entries " + KernelTuner.bucket(entries)
                    + " parts " + aParts + "/" + w.parts + (w.tiled ? " tiled" : "") + tunedType(), variants, run));
            finishCombine(combine, perEntry, offsets, tokens, out);
            if (interTap != null) {
                interTap.read(inter, interBytes);
            }
        } finally {
            if (perEntry != null) {
                pool.release(perEntry, entries * h * 4);
            }
            pool.release(inter, interBytes);
            pool.release(xb, x.elements() * 2 * aParts);
        }
    }

    /** Work items (expert, first local row) of 128 rows each, for the grouped launches. */
    private static int[] workList(int[] counts) {
        List<Integer> work = new ArrayList<>();
        for (int e = 0; e < counts.length; e++) {
            for (int m0 = 0; m0 < counts[e]; m0 += GEMM_TILE) {
                work.add(e);
                work.add(m0);
            }
        }
        return work.stream().mapToInt(Integer::intValue).toArray();
    }

    /** The dual-sparse expert launches: 2:4 weights on Sparse Tensor Cores, tokens gathered by index. */
    private void runSparseExperts(CudaTensor x, CUdeviceptr offsets, CUdeviceptr tokens, CUdeviceptr gates,
                                  int[] counts, CudaSparseExperts w, CudaTensor out, CombineOrder combine) {
        int h = w.hidden;
        int f = w.ffn;
        long entries = java.util.Arrays.stream(counts).asLongStream().sum();
        if (entries == 0) {  // otherwise each launch below zeroes out before its combine adds into it
            cuMemsetD32Async(out.f32, 0, out.elements(), gpu.stream());
            return;
        }
        DevicePool pool = gpu.pool();
        int[] work = workList(counts);
        boolean tiled = w.tiled();
        // the intermediate: [entries, F] 16-bit, or on a Hopper tiled per work item as the down kernel's token stages
        // (128 rows x 128 columns, sparse24_sm90.cu), columns padded to a multiple of 128
        long interBytes = tiled ? (long) (work.length / 2) * blocks(f, 128) * 128 * 128 * 2 : entries * f * 2;
        CUdeviceptr inter = pool.allocate(interBytes);
        CUdeviceptr xb = gemmInput(x, 1, pool);  // one 16-bit copy: the 2:4 kernels take no split inputs
        CUdeviceptr perEntry = startCombine(combine, entries, h);
        try (CudaTensor.Ints workList = upload(work)) {
            int items = work.length / 2;
            Consumer<String> run = gateUp -> {
                String down = gateUp.replace("gate_up", "down");
                int shared = sparseSharedBytes(gateUp);
                gpu.allowSharedMemory(gpu.function(gateUp), shared);
                gpu.allowSharedMemory(gpu.function(down), shared);
                // 256 output rows per block (2:4 as 256 rows, 128:2:8 as 128 condensed rows), or 128 (_n128)
                int rowTile = gateUp.endsWith("_n128") ? 128 : SPARSE_ROW_TILE;
                int guTiles = (int) blocks(2L * f, rowTile);
                int dTiles = (int) blocks(h, rowTile);
                cuMemsetD32Async(out.f32, 0, out.elements(), gpu.stream());
                if (tiled) {
                    if (f % 128 != 0) {  // padding columns meet zero weights: they must not hold NaN bit patterns
                        cuMemsetD32Async(inter, 0, interBytes / 4, gpu.stream());
                    }
                    launch(gateUp, items, guTiles, 256, shared, xb, tokens, offsets, workList.device, w.gateUpTiled,
                            inter, f, h);
                    launch(down, items, dTiles, 256, shared, inter, tokens, gates, offsets, workList.device,
                            w.downTiled, out.f32, perEntry, h, f);
                } else {
                    launch(gateUp, items, guTiles, 256, shared, xb, tokens, offsets, workList.device, w.gateUpValues,
                            w.gateUpMeta, inter, f, h);
                    launch(down, items, dTiles, 256, shared, inter, tokens, gates, offsets, workList.device,
                            w.downValues, w.downMeta, out.f32, perEntry, h, f);
                }
            };
            run.accept(choose("sparse experts " + counts.length + "x" + f + "x" + h + " entries "
                    + KernelTuner.bucket(entries) + (w.vectorSparse ? " 128:2:8" : " 2:4") + tunedType(),
                    sparseVariants(w), run));
            finishCombine(combine, perEntry, offsets, tokens, out);
        } finally {
            if (perEntry != null) {
                pool.release(perEntry, entries * h * 4);
            }
            pool.release(xb, x.elements() * 2);
            pool.release(inter, interBytes);
        }
    }

    @Override
    public void addSigmoidGated(Tensor acc, Tensor y, Tensor gateLogit) {
        timed("addSigmoidGated", () -> addSigmoidGatedOp(acc, y, gateLogit));
    }

    private void addSigmoidGatedOp(Tensor acc, Tensor y, Tensor gateLogit) {
        CudaTensor a = CudaTensor.of(acc);
        launch("add_sigmoid_gated_f32", blocks(a.elements(), 256), 1, 256, 0, a.f32, CudaTensor.of(y).f32,
                CudaTensor.of(gateLogit).f32, a.rows, a.cols);
    }

    @Override
    public LogProbs logProbs(Tensor hidden, Tensor lmHead, IntTensor targets, int[] topRows, int topK) {
        return timedValue("logProbs", () -> logProbsOp(hidden, lmHead, targets, topRows, topK));
    }

    private LogProbs logProbsOp(Tensor hidden, Tensor lmHead, IntTensor targets, int[] topRows, int topK) {
        CudaTensor x = CudaTensor.of(hidden);
        CudaTensor w = CudaTensor.of(lmHead);
        int t = x.rows;
        int vocab = w.rows;
        int h = x.cols;
        int chunk = deterministic ? Math.min(vocab, DETERMINISTIC_LOGITS_CHUNK)
                : (int) Math.max(GEMM_TILE, Math.min(vocab, LOGITS_CHUNK_ELEMENTS / Math.max(1, t) / GEMM_TILE * GEMM_TILE));
        int[] topSlot = new int[t];
        java.util.Arrays.fill(topSlot, -1);
        for (int i = 0; i < topRows.length; i++) {
            topSlot[topRows[i]] = i;
        }
        DevicePool pool = gpu.pool();
        long logitsBytes = (long) t * chunk * 4;
        long topBytes = Math.max(4L, (long) topRows.length * vocab * 4);
        CUdeviceptr logits = pool.allocate(logitsBytes);
        CUdeviceptr state = pool.allocate(t * 12L);
        CUdeviceptr lp = pool.allocate(Math.max(4L, t * 4L));
        CUdeviceptr top = pool.allocate(topBytes);
        int aParts = inputParts(w.parts);
        CUdeviceptr xb = gemmInput(x, aParts, pool);
        try (CudaTensor.Ints slots = upload(topSlot)) {
            CUdeviceptr target = CudaTensor.Ints.of(targets).device;
            CUdeviceptr tiled = linearTiled(w) ? tiledWeight(w) : null;
            for (int v0 = 0; v0 < vocab; v0 += chunk) {
                int c = Math.min(chunk, vocab - v0);
                if (tiled != null) {  // chunks start at multiples of 128 rows: whole blocks of the tiled copy
                    gemmTiled(xb, tiled.withByteOffset((long) v0 / 128 * blocks(h, 64) * DENSE_TILED_BLOCK_BYTES), null,
                            logits, t, c, h);
                } else {
                    gemm(xb, w.half.withByteOffset((long) v0 * h * 2 * w.parts), null, logits, t, c, h, aParts,
                            w.parts);
                }
                launch("logsoftmax_chunk", t, 1, 256, 0, logits, t, c, v0, target, state, slots.device, top, vocab);
            }
            launch("logsoftmax_finish", blocks(t, 256), 1, 256, 0, state, target, t, lp);
            float[] result = new float[t];
            float[] topLogits = new float[topRows.length * vocab];
            cuStreamSynchronize(gpu.stream());
            cuMemcpyDtoH(Pointer.to(result), lp, t * 4L);
            if (topLogits.length > 0) {
                cuMemcpyDtoH(Pointer.to(topLogits), top, topLogits.length * 4L);
            }
            int[][] best = new int[topRows.length][];
            for (int i = 0; i < topRows.length; i++) {
                best[i] = TopK.indices(topLogits, i * vocab, vocab, topK);
            }
            return new LogProbs(result, best);
        } finally {
            pool.release(xb, x.elements() * 2 * aParts);
            pool.release(logits, logitsBytes);
            pool.release(state, t * 12L);
            pool.release(lp, Math.max(4L, t * 4L));
            pool.release(top, topBytes);
        }
    }

    /** The runtime is shared by every backend of this JVM on the device; the weights belong to their owners. */
    @Override
    public void close() {
    }
}
