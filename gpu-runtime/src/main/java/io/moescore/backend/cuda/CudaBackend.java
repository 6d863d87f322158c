package io.moescore.backend.cuda;

import static io.moescore.backend.cuda.CudaLauncher.blocks;
import static io.moescore.backend.cuda.KernelConstants.ROUTE_CHUNK;
import static io.moescore.backend.cuda.KernelConstants.ROUTE_SCAN_THREADS;
import static io.moescore.backend.cuda.KernelConstants.ROUTE_THREADS;
import static io.moescore.backend.cuda.KernelConstants.SMALL_THREADS;
import static io.moescore.backend.cuda.KernelConstants.SMALL_TILE;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;

import io.moescore.backend.AttentionHeads;
import io.moescore.backend.Backend;
import io.moescore.backend.ColumnBlocks;
import io.moescore.backend.ExpertInputObserver;
import io.moescore.backend.ExpertWeights;
import io.moescore.backend.IntTensor;
import io.moescore.backend.LogProbs;
import io.moescore.backend.MemoryBudget;
import io.moescore.backend.Precision;
import io.moescore.backend.Tensor;
import io.moescore.backend.WeightSlice;
import io.moescore.model.ModelConfig;
import io.moescore.model.Rope;
import io.moescore.routing.ExpertRouting;
import io.moescore.routing.HostExpertRouting;
import io.moescore.routing.Router;
import io.moescore.sparse.Sparse24;
import io.moescore.sparse.VectorSparse;
import java.util.List;
import java.util.Map;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;

/**
 * The forward pass on one GPU: every op a kernel of src/main/cuda, activations kept on the device between
 * ops, weights uploaded once. Thread-safe: each calling thread works on its own stream and memory pool.
 *
 * <p>This class is the ops; the work is done by its parts: {@link CudaWeights} (upload and pre-tiling),
 * {@link CudaGemm} (dense GEMM launches), {@link ExpertLaunches} (the grouped expert launches), {@link CudaNorms}
 * (norms and RoPE), {@link CudaLogProbs} (the lm_head step),
 * {@link KernelChoice} (which variants of {@link KernelVariants} run, and the tuner) and {@link CudaLauncher}
 * (launch plumbing, errors, profiling).
 */
public final class CudaBackend implements Backend {
    /**
     * Weights with at most this many rows keep an fp32 copy (routers, gates, norms); products with them run in fp32
     * where the input has no current 16-bit copy ({@link #linear}).
     */
    static final int SMALL_WEIGHT_ROWS = CudaWeights.SMALL_WEIGHT_ROWS;

    private final CudaOptions options;
    private final GpuRuntime gpu;
    private final HalfType type;
    private final CudaLauncher launcher;
    private final KernelChoice choice;
    private final CudaWeights weights;
    private final CudaGemm gemm;
    private final ExpertLaunches experts;
    private final CudaLogProbs logProbs;
    private final CudaNorms norms;
    private final CudaAttention attention;

    /**
     * Opens the device of {@code options} (its runtime is shared by every backend of this JVM on that device).
     *
     * @throws CudaUnavailableException where the device or the kernels cannot be used
     * @throws IllegalArgumentException for a wgmma kernel family on a GPU that is not a Hopper, or a bad
     *                                  -Dmoescore.attention / MOESCORE_ATTENTION ({@link KernelChoice})
     */
    public CudaBackend(CudaOptions options) {
        this.options = options;
        this.gpu = GpuRuntime.forDevice(options.deviceOrdinal());
        this.type = HalfType.of(options.precision());
        this.choice = new KernelChoice(gpu, options.kernels(), type, options.deterministic());
        this.launcher = new CudaLauncher(gpu);
        this.weights = new CudaWeights(launcher, options.precision(), choice);
        this.gemm = new CudaGemm(launcher, choice, options.precision(), weights);
        this.experts = new ExpertLaunches(launcher, choice, gemm, options.precision(), options.deterministic());
        this.logProbs = new CudaLogProbs(launcher, gemm, choice, options.deterministic());
        this.attention = new CudaAttention(launcher, gpu, choice, type, options.precision());
        this.norms = new CudaNorms(launcher, type, weights, attention::readsHalfQk, deviceName());
    }

    public CudaOptions options() {
        return options;
    }

    /** Whether scores are deterministic and batch-invariant ({@link CudaOptions#deterministic()} says how). */
    public boolean deterministic() {
        return options.deterministic();
    }

    public Precision precision() {
        return options.precision();
    }

    /** Which kernels the dense GEMMs use here. */
    @Override
    public String gemmPath() {
        return switch (choice.kernels()) {
            case TUNED -> "tuned (wgmma 128x256, wgmma 128x128, mma.sync"
                    + (choice.library() == null ? "" : ", cuBLASLt")
                    + "; wgmma over pre-tiled weights except in split-bf16)";
            case WGMMA -> "wgmma 128x256 (sm_90a)";
            case WGMMA_N128 -> "wgmma 128x128 (sm_90a)";
            case WGMMA_WS -> "warp-specialized wgmma 128x256 over pre-tiled weights, else wgmma 128x256 (sm_90a)";
            case WGMMA_PAIRED -> "wgmma 128x128 over pre-tiled weights, two blocks per SM, else wgmma 128x128 (sm_90a)";
            case MMA_SYNC -> "mma.sync";
        };
    }

    /** Which kernels the 2:4 expert layers use here. */
    @Override
    public String sparsePath() {
        return switch (choice.kernels()) {
            case TUNED -> "wgmma.sp, bulk-copied pre-tiled weights, tuned 256- or 128-row tiles (sm_90a)";
            case WGMMA, WGMMA_WS -> "wgmma.sp, bulk-copied pre-tiled weights, 256-row tiles (sm_90a)";
            case WGMMA_N128, WGMMA_PAIRED -> "wgmma.sp, bulk-copied pre-tiled weights, 128-row tiles (sm_90a)";
            case MMA_SYNC -> "mma.sp";
        };
    }

    /** The autotuner's choices so far, shape -> kernel (empty where nothing is tuned). */
    @Override
    public Map<String, String> tunedKernels() {
        return choice.tuned();
    }

    public GpuRuntime runtime() {
        return gpu;
    }

    /** Starts recording device time per op (for benchmarks). */
    @Override
    public void startProfiling() {
        launcher.startProfiling();
    }

    /** Device milliseconds per op since profiling started or was last drained. */
    @Override
    public Map<String, Double> drainProfile() {
        return launcher.drainProfile();
    }

    @Override
    public String deviceName() {
        return gpu.name() + " (cuda:" + gpu.ordinal() + ", sm_" + gpu.computeCapability().replace(".", "") + ")";
    }

    /** The model features that have no kernels here yet ({@link CudaModelSupport}). */
    @Override
    public List<String> unsupported(ModelConfig c) {
        return missingKernels(c);
    }

    /** {@link #unsupported}, asked without a device (the Spark driver's check before any task). */
    public static List<String> missingKernels(ModelConfig c) {
        return CudaModelSupport.missingKernels(c);
    }

    /**
     * The device's memory, and 16-bit weights at least (split-bf16 adds a lo part to fp32 checkpoints; the sm_90a
     * kernels a pre-tiled copy): a lower bound, so only a model that cannot fit is refused.
     */
    @Override
    public MemoryBudget memoryBudget() {
        return new MemoryBudget(gpu.totalMemory(), 2, true, gpu.name() + "'s memory");
    }

    // ---- weights (CudaWeights) and activations --------------------------------------------------------------

    @Override
    public Tensor weight(WeightSlice s) {
        return weights.weight(s);
    }

    /**
     * One product for q, k and v where every reader of them takes column views: attention on 16-bit copies
     * (bf16, fp16; head sizes of attention_fa.cu), plain RoPE over whole heads, q/k norms in RoPE's one pass; no
     * biases (stacking them is not done yet), no clamp, no latent attention.
     */
    @Override
    public boolean fusesQkv(ModelConfig c) {
        int d = c.headDim();
        if (c.latentAttention() != null || c.qkvBias() || !Float.isNaN(c.clipQkv()) || d != c.vHeadDim()
                || !attention.readsHalfQk(d) || c.rope().rotaryDim() != d || !c.rope().isPlain(d)) {
            return false;
        }
        ColumnBlocks q = new ColumnBlocks(0, d, c.numHeads(), d);
        ColumnBlocks k = new ColumnBlocks(0, d, c.numKvHeads(), d);
        return switch (c.qkNorm()) {
            case NONE -> true;
            case PER_HEAD -> norms.inOnePass(c.qDim(), d, q, c.rope()) && norms.inOnePass(c.kvDim(), d, k, c.rope());
            case WHOLE_PROJECTION -> norms.inOnePass(c.qDim(), c.qDim(), q, c.rope())
                    && norms.inOnePass(c.kvDim(), c.kvDim(), k, c.rope());
        };
    }

    @Override
    public Tensor stackedWeight(WeightSlice... slices) {
        return weights.stacked(slices);
    }

    @Override
    public Tensor[] columns(Tensor t, int... widths) {
        return CudaTensor.columns(CudaTensor.of(t), widths);
    }

    @Override
    public ExpertWeights expertWeights(WeightSlice[] gate, WeightSlice[] up, WeightSlice[] down) {
        return weights.dense(gate, up, down);
    }

    @Override
    public ExpertWeights sparseExpertWeights(Sparse24.Packed[] gate, Sparse24.Packed[] up, Sparse24.Packed[] down) {
        return weights.sparse24(gate, up, down);
    }

    /**
     * 128:2:8 experts run on their own kernels on a Hopper (vnm_sm90.cu); elsewhere as the 2:4 matrices they also
     * are.
     */
    @Override
    public ExpertWeights vectorSparseExpertWeights(VectorSparse.Packed[] gate, VectorSparse.Packed[] up,
                                                   VectorSparse.Packed[] down) {
        if (!choice.runsWgmma()) {
            return Backend.super.vectorSparseExpertWeights(gate, up, down);
        }
        return weights.vectorSparse(gate, up, down);
    }

    @Override
    public Tensor activation(int rows, int cols) {
        DevicePool pool = gpu.pool();
        return CudaTensor.activation(rows, cols, pool, false);
    }

    @Override
    public Tensor activation(float[] values, int rows, int cols) {
        if ((long) rows * cols != values.length) {
            throw new IllegalArgumentException(rows + " x " + cols + " activation from " + values.length + " values");
        }
        return launcher.guarded("upload", () -> {
            CudaTensor t = (CudaTensor) activation(rows, cols);
            cuStreamSynchronize(gpu.stream());
            cuMemcpyHtoD(t.f32, Pointer.to(values), values.length * 4L);
            return t;
        });
    }

    /**
     * At bf16 and fp16 precision a normed activation also keeps the GEMM input copy its norm writes (one 16-bit part),
     * beside the fp32 values that one-row gates' fp32 products read (a shared expert's gate); at split-bf16 it is a
     * plain activation (the products there take two or three parts, converted per product).
     */
    @Override
    public Tensor normedActivation(int rows, int cols) {
        return CudaTensor.activation(rows, cols, gpu.pool(), precision() != Precision.SPLIT_BF16);
    }

    @Override
    public IntTensor ints(int[] values) {
        return launcher.guarded("upload", () -> launcher.upload(values.clone()));
    }

    @Override
    public float[] toHost(Tensor t) {
        CudaTensor c = CudaTensor.of(t);
        c.requireDefined("toHost");
        return launcher.download(c);
    }

    // ---- the ops ------------------------------------------------------------------------------------------

    @Override
    public void embed(Tensor table, IntTensor ids, Tensor out) {
        launcher.timed("embed", () -> {
            CudaTensor t = CudaTensor.of(table);
            CudaTensor o = CudaTensor.output(out, "embed");
            launcher.launch(type.embedKernel, ids.length(), 1, 256, 0, t.half, CudaTensor.Ints.of(ids).device, o.f32,
                    ids.length(), t.cols, t.parts);
        });
    }

    @Override
    public void rmsNorm(Tensor x, Tensor weight, int groupSize, float eps, Tensor out) {
        norms.rmsNorm(x, weight, groupSize, eps, out);
    }

    /** One pass over x (elementwise.cu, rmsnorm_rows_T): x += delta, then out's fp32 values and 16-bit copy. */
    @Override
    public void addRmsNorm(Tensor x, Tensor delta, Tensor weight, float eps, Tensor out) {
        norms.addRmsNorm(x, delta, weight, eps, out, true);
    }

    /** The same pass writing only out's 16-bit copy where it has one (the products read nothing else). */
    @Override
    public void addRmsNormForProducts(Tensor x, Tensor delta, Tensor weight, float eps, Tensor out) {
        norms.addRmsNorm(x, delta, weight, eps, out, false);
    }

    @Override
    public void linear(Tensor x, Tensor w, Tensor bias, Tensor out) {
        launcher.timed("linear", () -> {
            CudaTensor in = CudaTensor.of(x);
            CudaTensor weight = CudaTensor.of(w);
            CudaTensor o = CudaTensor.output(out, "linear");
            if (weight.cols != in.cols || o.rows != in.rows || o.cols != weight.rows) {
                throw new IllegalArgumentException("linear: x " + in.rows + "x" + in.cols + ", w " + weight.rows
                        + "x" + weight.cols + ", out " + o.rows + "x" + o.cols);
            }
            CUdeviceptr b = bias == null ? null : CudaTensor.of(bias).requireF32("bias");
            // a small weight's fp32 product only where the input has no current 16-bit copy (split-bf16, or an
            // activation no norm wrote) or the weight no 16-bit rows (one-row gates): at bf16 / fp16 the routers
            // read the norm's copy on the tensor cores, as transformers' own bf16 / fp16 run does
            boolean readsCopy = in.currentCopy() != null && weight.half != null && weight.parts == 1;
            if (weight.f32 != null && !readsCopy) {
                in.requireDefined("linear (fp32 product)");  // fp32 values an op left undefined are never read
                launcher.launch("linear_small_f32", blocks(in.rows, SMALL_TILE), (int) blocks(weight.rows, SMALL_TILE),
                        SMALL_THREADS, 0, in.f32, weight.f32, b, o.f32, in.rows, weight.rows, in.cols);
                return;
            }
            gemm.linear(in, weight, b, o);
        });
    }

    @Override
    public void clamp(Tensor x, float limit) {
        launcher.timed("clamp", () -> {
            CudaTensor t = CudaTensor.output(x, "clamp");
            launcher.launch("clamp_f32", blocks(t.elements(), 256), 1, 256, 0, t.f32, t.elements(), limit);
        });
    }

    @Override
    public void scale(Tensor x, float factor) {
        launcher.timed("scale", () -> {
            CudaTensor t = CudaTensor.output(x, "scale");
            launcher.launch("scale_f32", blocks(t.elements(), 256), 1, 256, 0, t.f32, t.elements(), factor);
        });
    }

    /** Latent attention's column copies (CudaAttention: elementwise.cu, copy_columns_f32). */
    @Override
    public void copyColumns(Tensor src, ColumnBlocks from, Tensor dst, ColumnBlocks to) {
        attention.copyColumns(src, from, dst, to);
    }

    /** Rotary embeddings (elementwise.cu), of a part of each head other than its first columns through a copy. */
    @Override
    public void rope(Tensor x, ColumnBlocks blocks, Rope rope, IntTensor positions) {
        if (!ropeOfPartsThroughCopy(x, blocks, rope, positions)) {
            norms.rope(x, blocks, rope, positions, true);
        }
    }

    /** Where attention reads half q and k, only the 16-bit copy is written (x's fp32 values then undefined). */
    @Override
    public void ropeForAttention(Tensor x, ColumnBlocks blocks, Rope rope, IntTensor positions) {
        if (!ropeOfPartsThroughCopy(x, blocks, rope, positions)) {
            norms.rope(x, blocks, rope, positions, false);
        }
    }

    /**
     * The rope kernels rotate the first columns of whole heads ({@link CudaNorms#ropeTakes}); blocks elsewhere in
     * each head (DeepSeek's q_rope, the last qk_rope_head_dim columns of every q head) are copied out as whole heads,
     * rotated there and copied back. Returns false, having done nothing, where the kernels take the blocks as they
     * are or would not take them as whole heads either (CudaNorms.rope then refuses them, naming them).
     */
    private boolean ropeOfPartsThroughCopy(Tensor x, ColumnBlocks blocks, Rope rope, IntTensor positions) {
        ColumnBlocks packed = ColumnBlocks.heads(blocks.count(), blocks.width());
        if (norms.ropeTakes(x.cols(), blocks, rope)
                || !norms.ropeTakes(blocks.count() * blocks.width(), packed, rope)) {
            return false;
        }
        try (Tensor part = activation(x.rows(), blocks.count() * blocks.width())) {
            copyColumns(x, blocks, part, packed);
            norms.rope(part, packed, rope, positions, true);
            copyColumns(part, packed, x, blocks);
        }
        return true;
    }

    /** One pass where attention reads half-precision q and k (rmsnorm_rope_T); elsewhere the two ops. */
    @Override
    public void rmsNormRope(Tensor x, Tensor weight, int groupSize, float eps, ColumnBlocks blocks, Rope rope,
                            IntTensor positions) {
        if (!norms.rmsNormRope(x, weight, groupSize, eps, blocks, rope, positions, true)) {
            Backend.super.rmsNormRope(x, weight, groupSize, eps, blocks, rope, positions);  // views refused there
        }
    }

    /** Where the one pass applies, only the 16-bit copy attention reads is written (x's fp32 values then undefined). */
    @Override
    public void rmsNormRopeForAttention(Tensor x, Tensor weight, int groupSize, float eps, ColumnBlocks blocks,
                                        Rope rope, IntTensor positions) {
        if (!norms.rmsNormRope(x, weight, groupSize, eps, blocks, rope, positions, false)) {
            Backend.super.rmsNormRope(x, weight, groupSize, eps, blocks, rope, positions);
        }
    }

    /** The attention kernel for a head size ({@link CudaAttention#kernel}). */
    AttentionKernel attentionKernel(int headDim) {
        return attention.kernel(headDim);
    }

    /** {@link CudaAttention#run}: heads of one width, or q/k and v heads of two through padded heads. */
    @Override
    public void attention(Tensor q, Tensor k, Tensor v, IntTensor seqOffsets, AttentionHeads heads, int window,
                          Tensor out) {
        attention.run(q, k, v, seqOffsets, heads, window, out);
    }

    @Override
    public void addInPlace(Tensor acc, Tensor x) {
        launcher.timed("addInPlace", () -> {
            CudaTensor a = CudaTensor.output(acc, "addInPlace");
            launcher.launch("add_f32", blocks(a.elements(), 256), 1, 256, 0, a.f32, CudaTensor.of(x).f32,
                    a.elements());
        });
    }

    @Override
    public void addSigmoidGated(Tensor acc, Tensor y, Tensor gateLogit) {
        launcher.timed("addSigmoidGated", () -> {
            CudaTensor a = CudaTensor.output(acc, "addSigmoidGated");
            launcher.launch("add_sigmoid_gated_f32", blocks(a.elements(), 256), 1, 256, 0, a.f32,
                    CudaTensor.of(y).f32, CudaTensor.of(gateLogit).f32, a.rows, a.cols);
        });
    }

    @Override
    public boolean canRoute(Router router) {
        return routes(router);
    }

    /**
     * Whether a kernel routes as {@code router} does ({@link RouterKernel#of}): top-k, top-p, batch-top-k (up to
     * ROUTER_MAX_K experts per token), the threshold gates and sparsemax, and removed experts around any of them.
     */
    public static boolean routes(Router router) {
        return RouterKernel.of(router) != null;
    }

    @Override
    public ExpertRouting route(Tensor routerLogits, Router router) {
        return route(routerLogits, router, new int[] {0, CudaTensor.of(routerLogits).rows});
    }

    @Override
    public ExpertRouting route(Tensor routerLogits, Router router, int[] sequenceStarts) {
        return launcher.timedValue("route", () -> routeOp(routerLogits, router, sequenceStarts));
    }

    /**
     * The router's kernel writes each token's experts as a row of chosen/weights (and its count where counts vary);
     * route_count, route_offsets and route_fill turn the rows into per-expert token lists (router.cu: E x
     * ceil(T / ROUTE_CHUNK) blocks, expert e's tokens ascending), all queued on the stream.
     * Buffers hold the worst case, {@link RouterKernel#width} experts for every token.
     */
    private ExpertRouting routeOp(Tensor routerLogits, Router router, int[] sequenceStarts) {
        RouterKernel kernel = RouterKernel.of(router);
        if (kernel == null) {
            throw new UnsupportedOperationException("the CUDA backend has no router kernel for " + router
                    + ": use --backend cpu");
        }
        CudaTensor logits = CudaTensor.of(routerLogits);
        int t = logits.rows;
        int e = logits.cols;
        int width = kernel.width(e);
        DevicePool pool = gpu.pool();
        long entries = (long) t * width;
        CUdeviceptr chosen = pool.allocate(entries * 4);
        CUdeviceptr weights = pool.allocate(entries * 4);
        CUdeviceptr perToken = kernel.varies() ? pool.allocate(Math.max(4L, t * 4L)) : null;
        CUdeviceptr counts = pool.allocate(e * 4L);
        CUdeviceptr offsets = pool.allocate((e + 1) * 4L);
        CUdeviceptr tokens = pool.allocate(entries * 4);
        CUdeviceptr gates = pool.allocate(entries * 4);
        int chunks = Math.max(1, (t + ROUTE_CHUNK - 1) / ROUTE_CHUNK);
        CUdeviceptr chunkStarts = pool.allocate((long) e * chunks * 4);
        kernel.launch(launcher, logits.f32, t, e, sequenceStarts,
                new RouterKernel.Rows(chosen, weights, perToken, width));
        launcher.launch("route_count", e, chunks, ROUTE_THREADS, 0, chosen, perToken, t, width, chunkStarts);
        launcher.launch("route_offsets", 1, 1, ROUTE_SCAN_THREADS, 0, chunkStarts, e, chunks, offsets, counts);
        launcher.launch("route_fill", e, chunks, ROUTE_THREADS, 0, chosen, weights, perToken, t, width, chunkStarts,
                tokens, gates);
        // no wait here: the experts plan their work on the device; the counts follow for the load statistics
        RoutedCounts hostCounts = new RoutedCounts(counts, e, (long) t * kernel.least(), entries, kernel.name(),
                gpu.stream());
        pool.release(weights, entries * 4);
        pool.release(counts, e * 4L);
        pool.release(chunkStarts, (long) e * chunks * 4);
        return new CudaExpertRouting(e, (int) entries, offsets, tokens, gates, chosen, perToken, width, hostCounts,
                gpu.stream(), () -> {
                    pool.release(chosen, entries * 4);
                    if (perToken != null) {
                        pool.release(perToken, Math.max(4L, t * 4L));
                    }
                    pool.release(offsets, (e + 1) * 4L);
                    pool.release(tokens, entries * 4);
                    pool.release(gates, entries * 4);
                });
    }

    /** Copied through host memory ({@link HostRoutingUpload}); compiled, not yet run on a GPU. */
    @Override
    public ExpertRouting expertRouting(HostExpertRouting routing, int rows) {
        return launcher.guarded("expertRouting", () -> HostRoutingUpload.upload(gpu, routing, rows));
    }

    @Override
    public void experts(Tensor x, ExpertRouting routing, ExpertWeights weights, Tensor out) {
        launcher.timed("experts", () -> experts.run(CudaTensor.of(x), (CudaExpertRouting) routing, weights,
                CudaTensor.output(out, "experts")));
    }

    /**
     * {@link #experts} on dense experts, then their inputs downloaded for {@code seen}
     * ({@link ExpertLaunches#observed}).
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
        experts.observed(CudaTensor.of(x), (CudaExpertRouting) routing, dense, CudaTensor.of(out), seen);
    }

    @Override
    public void ffn(Tensor x, ExpertWeights weights, Tensor out) {
        launcher.timed("ffn", () -> experts.ffn(CudaTensor.of(x), (CudaExperts) weights,
                CudaTensor.output(out, "ffn")));
    }

    @Override
    public LogProbs logProbs(Tensor hidden, Tensor lmHead, IntTensor targets, int[] topRows, int topK,
                             float logitDivisor) {
        return launcher.timedValue("logProbs", () -> logProbs.run(CudaTensor.of(hidden), CudaTensor.of(lmHead),
                CudaTensor.Ints.of(targets), topRows, topK, logitDivisor));
    }

    /** The runtime is shared by every backend of this JVM on the device; the weights belong to their owners. */
    @Override
    public void close() {
    }
}
