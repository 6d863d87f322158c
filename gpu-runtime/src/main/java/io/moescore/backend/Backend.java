package io.moescore.backend;

import io.moescore.model.ModelConfig;
import io.moescore.model.Rope;
import io.moescore.routing.ExpertRouting;
import io.moescore.routing.HostExpertRouting;
import io.moescore.routing.Router;
import io.moescore.sparse.Sparse24;
import io.moescore.sparse.VectorSparse;

import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * The operations a forward pass needs, on tensors the backend allocates. The engine is written against this
 * interface only; {@code CpuBackend} is the reference every faster backend is tested against.
 * Activations are fp32 as far as the engine can tell; a backend may store them otherwise.
 */
public interface Backend extends AutoCloseable {
    /** What computes: a CPU description or a GPU's name. */
    String deviceName();

    /**
     * What this backend lacks to run a model of this config, one phrase per missing piece ("a kernel for latent
     * attention"); empty where it can run it. The engine asks before loading any weight.
     */
    default List<String> unsupported(ModelConfig config) {
        return List.of();
    }

    /** What this backend can hold (the engine's check before loading), or null where it cannot tell. */
    default MemoryBudget memoryBudget() {
        return null;
    }

    /** Places a checkpoint weight on the backend, converted from its stored dtype. */
    Tensor weight(WeightSlice slice);

    /**
     * Whether this backend runs the model's q, k and v projections as one product ({@link #stackedWeight} at load,
     * {@link #columns} of its output as q, k and v): only where every op that reads them takes column views.
     */
    default boolean fusesQkv(ModelConfig config) {
        return false;
    }

    /** Places weights of equal columns as one weight, their rows one after another (the fused q/k/v projection). */
    default Tensor stackedWeight(WeightSlice... slices) {
        throw new UnsupportedOperationException(deviceName() + " does not stack weights");
    }

    /**
     * Places the feed-forward weights of {@code gate.length} experts (gate and up [ffn, hidden], down
     * [hidden, ffn] each), converted from their stored dtype. A dense block is one expert.
     */
    ExpertWeights expertWeights(WeightSlice[] gate, WeightSlice[] up, WeightSlice[] down);

    /**
     * Places gpt-oss's experts (biases and the clamped SwiGLU); {@link #experts} then computes them as
     * {@link BiasedExperts} says. Backends without such kernels refuse by name (their {@link #unsupported} names it
     * before loading).
     */
    default ExpertWeights biasedExpertWeights(BiasedExperts experts) {
        throw new UnsupportedOperationException(deviceName() + " has no kernel for experts with biases and the "
                + "clamped SwiGLU (gpt-oss)");
    }

    /**
     * Places experts whose weights are 2:4 sparse ({@link Sparse24}): the backend keeps them
     * packed where it has sparse kernels and dense otherwise.
     */
    ExpertWeights sparseExpertWeights(Sparse24.Packed[] gate, Sparse24.Packed[] up, Sparse24.Packed[] down);

    /**
     * Places experts in Samoyeds' vector-wise format ({@link VectorSparse}, 75% sparse). A
     * backend without a kernel for it runs them as the 2:4 matrices they also are.
     */
    default ExpertWeights vectorSparseExpertWeights(VectorSparse.Packed[] gate, VectorSparse.Packed[] up,
                                                    VectorSparse.Packed[] down) {
        return sparseExpertWeights(as24(gate), as24(up), as24(down));
    }

    private static Sparse24.Packed[] as24(VectorSparse.Packed[] experts) {
        return Arrays.stream(experts).map(VectorSparse::toSparse24).toArray(Sparse24.Packed[]::new);
    }

    /** A new activation tensor; its contents are undefined until written. */
    Tensor activation(int rows, int cols);

    /** A new activation tensor holding {@code values} (row-major rows x cols). */
    Tensor activation(float[] values, int rows, int cols);

    /**
     * A new activation for the output of {@link #rmsNorm} / {@link #addRmsNorm} over whole rows that feeds matrix
     * products ({@link #linear}, {@link #experts}, {@link #ffn}, {@link #logProbs}): a backend may also keep it in
     * its GEMM input precision, written in the norm's own pass, so that no product converts it again.
     */
    default Tensor normedActivation(int rows, int cols) {
        return activation(rows, cols);
    }

    /**
     * Consecutive column blocks of an activation as tensors (views sharing its memory; closing one frees nothing of
     * it), {@code widths} summing to its columns. Only where {@link #fusesQkv} says so, for the ops it names.
     */
    default Tensor[] columns(Tensor t, int... widths) {
        throw new UnsupportedOperationException(deviceName() + " has no column views");
    }

    IntTensor ints(int[] values);

    /** Copies a tensor to the host (tests and diagnostics). */
    float[] toHost(Tensor t);

    /** out[t] = table[ids[t]]. */
    void embed(Tensor table, IntTensor ids, Tensor out);

    /**
     * RMSNorm over each run of {@code groupSize} columns of every row: out = x / sqrt(mean(x^2) + eps) * weight,
     * weight having {@code groupSize} entries. groupSize = cols normalises whole rows; head_dim, per head.
     * {@code out} may be {@code x}.
     */
    void rmsNorm(Tensor x, Tensor weight, int groupSize, float eps, Tensor out);

    /**
     * The residual add and the next norm in one step: x += delta, then out = rmsNorm(x) over whole rows. The
     * default does exactly that in two ops; a backend may fuse them (one pass over x instead of three).
     */
    default void addRmsNorm(Tensor x, Tensor delta, Tensor weight, float eps, Tensor out) {
        addInPlace(x, delta);
        rmsNorm(x, weight, x.cols(), eps, out);
    }

    /**
     * {@link #addRmsNorm} whose {@code out} is read next only by matrix products ({@link #linear} of weights of more
     * than one row, {@link #experts}, {@link #ffn}, {@link #logProbs}), never as fp32 values ({@link #toHost}, a
     * one-row gate): a backend may keep out only in its GEMM input precision ({@link #normedActivation}), its fp32
     * values then undefined until an op writes them. This default is the op itself.
     */
    default void addRmsNormForProducts(Tensor x, Tensor delta, Tensor weight, float eps, Tensor out) {
        addRmsNorm(x, delta, weight, eps, out);
    }

    /** out = x w^T (+ bias): x [T, in], w [outDim, in], bias null or [1, outDim], out [T, outDim]. */
    void linear(Tensor x, Tensor w, Tensor bias, Tensor out);

    /** Clamps every element of x to [-limit, limit], in place. */
    void clamp(Tensor x, float limit);

    /** x *= factor, every element, in place (Granite's embedding and residual multipliers). */
    void scale(Tensor x, float factor);

    /**
     * dst[r, to.start(b) + i] = src[r, from.start(b) + i] for every row r, block b and i < width: splits, joins and
     * broadcasts of heads (DeepSeek's latent attention). {@code from} and {@code to} have the same count and width.
     */
    void copyColumns(Tensor src, ColumnBlocks from, Tensor dst, ColumnBlocks to);

    /** Rotary embedding (rotate-half form) on each head of x, in place; positions has one entry per row. */
    default void rope(Tensor x, int headDim, IntTensor positions, double theta) {
        rope(x, ColumnBlocks.heads(x.cols() / headDim, headDim), Rope.plain(theta, headDim), positions);
    }

    /**
     * Rotary embedding on each of the column {@code blocks} of every row of x (each rope.rotaryDim() wide), in
     * place; positions has one entry per row. Pairs are (i, i + d/2), or adjacent columns where the rope is
     * interleaved; cos and sin are multiplied by the rope's attention factor.
     */
    void rope(Tensor x, ColumnBlocks blocks, Rope rope, IntTensor positions);

    /**
     * x = rope(rmsnorm(x)) in place: RMSNorm over each run of {@code groupSize} columns (q and k's norms, per head
     * or over the whole projection), then {@link #rope(Tensor, ColumnBlocks, Rope, IntTensor)}. A backend may do
     * both in one pass; this default is the two ops.
     */
    default void rmsNormRope(Tensor x, Tensor weight, int groupSize, float eps, ColumnBlocks blocks, Rope rope,
                             IntTensor positions) {
        rmsNorm(x, weight, groupSize, eps, x);
        rope(x, blocks, rope, positions);
    }

    /**
     * {@link #rope(Tensor, ColumnBlocks, Rope, IntTensor)} of a q or k that {@link #attention} alone reads next: a
     * backend may keep the result only in the form its attention reads (x's own values are then undefined until
     * written again). This default is the op itself.
     */
    default void ropeForAttention(Tensor x, ColumnBlocks blocks, Rope rope, IntTensor positions) {
        rope(x, blocks, rope, positions);
    }

    /** {@link #rmsNormRope} of a q or k that {@link #attention} alone reads next, as {@link #ropeForAttention} says. */
    default void rmsNormRopeForAttention(Tensor x, Tensor weight, int groupSize, float eps, ColumnBlocks blocks,
                                         Rope rope, IntTensor positions) {
        rmsNormRope(x, weight, groupSize, eps, blocks, rope, positions);
    }

    /**
     * Causal grouped-query attention within each packed sequence: rows seqOffsets[s] .. seqOffsets[s+1]-1 of q,
     * k and v belong to sequence s. A positive window limits each query to its last {@code window} keys.
     */
    default void attention(Tensor q, Tensor k, Tensor v, IntTensor seqOffsets, int numHeads, int numKvHeads,
                           int headDim, int window, Tensor out) {
        attention(q, k, v, seqOffsets, AttentionHeads.standard(numHeads, numKvHeads, headDim), window, out);
    }

    /**
     * {@link #attention(Tensor, Tensor, Tensor, IntTensor, int, int, int, int, Tensor)} with any head geometry:
     * q and k heads of heads.qkHeadDim(), v and out heads of heads.vHeadDim(), softmax(scale q.k).
     */
    void attention(Tensor q, Tensor k, Tensor v, IntTensor seqOffsets, AttentionHeads heads, int window, Tensor out);

    /**
     * {@link #attention(Tensor, Tensor, Tensor, IntTensor, AttentionHeads, int, Tensor)} with gpt-oss's attention
     * sinks ({@code sinks} [1, heads], or null for none): per head an extra logit in the softmax's denominator that
     * contributes no value, p_j = exp(s_j - m) / (sum_i exp(s_i - m) + exp(sink - m)), m = max(max_i s_i, sink).
     */
    default void attention(Tensor q, Tensor k, Tensor v, IntTensor seqOffsets, AttentionHeads heads, int window,
                           Tensor sinks, Tensor out) {
        if (sinks != null) {
            throw new UnsupportedOperationException(deviceName() + " has no attention kernel with sinks (gpt-oss)");
        }
        attention(q, k, v, seqOffsets, heads, window, out);
    }

    /** acc += x. */
    void addInPlace(Tensor acc, Tensor x);

    /** Routes every row of the router logits [T, E] to its experts. */
    ExpertRouting route(Tensor routerLogits, Router router);

    /**
     * As {@link #route(Tensor, Router)}, with the batch's sequence starts ({@code sequenceStarts[s]}: the first
     * row of sequence s, then the row count) for routers that look beyond one token ({@link Router}).
     */
    default ExpertRouting route(Tensor routerLogits, Router router, int[] sequenceStarts) {
        return route(routerLogits, router);
    }

    /** Whether {@link #route} runs this router (the CPU backend runs every one: each is its own reference). */
    default boolean canRoute(Router router) {
        return true;
    }

    /**
     * A routing made on the host, in the form this backend's {@link #experts} read ({@code rows}: the rows of the
     * x it is used with): the lists a routing of another device was cut into when experts are spread over several
     * ({@code io.moescore.engine.DeviceGroup}). This default is the host routing itself, which the CPU backend's
     * experts read; a backend that keeps routing on its device copies it there.
     */
    default ExpertRouting expertRouting(HostExpertRouting routing, int rows) {
        return routing;
    }

    /**
     * out[t] = sum over the experts e that t was routed to of gate(t, e) * ffn_e(x[t]), computed per expert on
     * its token list only (the activation-sparse contract). Overwrites out.
     */
    void experts(Tensor x, ExpertRouting routing, ExpertWeights experts, Tensor out);

    /**
     * {@link #experts}, showing {@code seen} each expert's inputs on the way (calibration; null: nobody watches).
     * Backends that cannot show them throw {@link UnsupportedOperationException} saying so.
     */
    default void experts(Tensor x, ExpertRouting routing, ExpertWeights experts, Tensor out, ExpertInputObserver seen) {
        if (seen != null) {
            throw new UnsupportedOperationException(deviceName() + " cannot show expert inputs for calibration");
        }
        experts(x, routing, experts, out);
    }

    /** out = ffn(x) for every row, with a single-expert {@link ExpertWeights}. */
    void ffn(Tensor x, ExpertWeights weights, Tensor out);

    /** acc[t] += sigmoid(gateLogit[t, 0]) * y[t]: the shared expert's gate. */
    void addSigmoidGated(Tensor acc, Tensor y, Tensor gateLogit);

    /**
     * log-softmax of hidden lm_head^T at each row's target (targets[t] < 0: none), without keeping the
     * T x vocab logits; plus the topK most likely tokens of each row listed in topRows.
     */
    default LogProbs logProbs(Tensor hidden, Tensor lmHead, IntTensor targets, int[] topRows, int topK) {
        return logProbs(hidden, lmHead, targets, topRows, topK, 1f);
    }

    /** {@link #logProbs(Tensor, Tensor, IntTensor, int[], int)} of the logits divided by {@code logitDivisor}. */
    LogProbs logProbs(Tensor hidden, Tensor lmHead, IntTensor targets, int[] topRows, int topK, float logitDivisor);

    // ---- what benchmarks and reports ask of a backend; the defaults describe one that neither tunes nor times
    // its ops on a device (the CPU): callers then time by the wall clock.

    /** Starts recording device time per op (benchmarks); a backend without device timers records nothing. */
    default void startProfiling() {
    }

    /** Device milliseconds per op since profiling started or was last drained; empty where nothing was recorded. */
    default Map<String, Double> drainProfile() {
        return Map.of();
    }

    /** The autotuner's kernel choices so far, shape -> kernel; empty where nothing is tuned. */
    default Map<String, String> tunedKernels() {
        return Map.of();
    }

    /** Which kernels the dense matrix products run here. */
    default String gemmPath() {
        return "fp32 loops (" + deviceName() + ")";
    }

    /** Which kernels the 2:4 expert layers run here. */
    default String sparsePath() {
        return "decompressed to dense, " + gemmPath();
    }

    @Override
    void close();
}
