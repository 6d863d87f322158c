package io.moescore.engine;

import io.moescore.batch.ExpertLoad;
import io.moescore.batch.TokenRouting;
import io.moescore.batch.ScoreBatch;
import io.moescore.batch.SequenceScore;
import io.moescore.batch.TokenBatch;
import io.moescore.routing.ExpertRouting;
import io.moescore.routing.HostExpertRouting;
import io.moescore.routing.Router;
import io.moescore.routing.RoutingSpec;

import io.moescore.backend.AttentionHeads;
import io.moescore.backend.Backend;
import io.moescore.backend.ColumnBlocks;
import io.moescore.backend.DeviceOutOfMemoryException;
import io.moescore.backend.Devices;
import io.moescore.backend.ExpertWeights;
import io.moescore.backend.IntTensor;
import io.moescore.backend.LogProbs;
import io.moescore.backend.MemoryBudget;
import io.moescore.backend.Tensor;
import io.moescore.model.Checkpoint;
import io.moescore.model.LatentAttention;
import io.moescore.model.ModelConfig;
import io.moescore.model.Multipliers;
import io.moescore.model.Rope;
import io.moescore.sparse.SparsityPattern;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.ObjIntConsumer;

/**
 * Scores token sequences with one model on one backend (the routed experts possibly spread over several devices,
 * {@link DeviceGroup}): the whole decoder forward pass (prefill only; scoring needs no KV cache), written once against
 * {@link Backend}. Thread-safe: each call allocates its own activations, so concurrent tasks may share one engine.
 */
public final class Engine implements AutoCloseable {
    private final ModelConfig config;
    private final Backend backend;
    private final ModelWeights weights;
    /** Per layer, the router of its MoE block (null for dense layers). */
    private final List<Router> routers;
    /** Each MoE layer's routed experts for a forward: resident, or streamed from host memory. */
    private final ExpertStore experts;
    /** The checkpoint streamed experts are read from, closed with the engine (null: nothing streams). */
    private final Checkpoint streamedFrom;
    /** Where the routed experts are placed and run: this backend, or several devices ({@link DeviceGroup}). */
    private final ExpertDevices expertDevices;

    public Engine(ModelConfig config, Backend backend, ModelWeights weights) {
        this(config, backend, weights, RoutingSpec.MODEL);
    }

    /**
     * An engine whose MoE layers route as {@code routing} says ({@link RoutingSpec#MODEL}: the model's own routers).
     *
     * @throws IllegalArgumentException where the spec does not fit the model (naming --routing and why)
     * @throws UnsupportedModelException where the backend lacks the spec's router (naming the variant), an
     *                                   UnsupportedOperationException that the commands report with exit code 2
     */
    public Engine(ModelConfig config, Backend backend, ModelWeights weights, RoutingSpec routing) {
        this(config, backend, weights, routing, null, ExpertDevices.on(backend));
    }

    Engine(ModelConfig config, Backend backend, ModelWeights weights, RoutingSpec routing, Checkpoint streamedFrom,
           ExpertDevices expertDevices) {
        requireSupported(config, backend, "this");
        this.config = config;
        this.backend = backend;
        this.weights = weights;
        this.routers = routers(config, weights, routing);
        requireRoutable(backend, routing, routers);
        this.experts = new ExpertStore(expertDevices, weights, config.routedExpertParameterCount());
        this.streamedFrom = streamedFrom;
        this.expertDevices = expertDevices;
    }

    /**
     * An engine over this one's weights whose MoE layers route as {@code routing} says (router variants scored on
     * one copy of the weights). Close only this engine, the weights' owner: the other one must not be closed.
     *
     * @throws IllegalArgumentException  where the spec does not fit the model
     * @throws UnsupportedModelException where the backend lacks the spec's router
     */
    public Engine withRouting(RoutingSpec routing) {
        return new Engine(config, backend, weights, routing, null, expertDevices);
    }

    /**
     * Refuses, naming the spec, routers the backend has no kernel for ({@code routers}: the spec's, e.g.
     * {@link RoutingSpec#routers}); callers ask before loading any weight.
     *
     * @throws UnsupportedModelException naming the spec
     */
    public static void requireRoutable(Backend backend, RoutingSpec routing, List<Router> routers) {
        if (!routing.isModel()) {
            for (Router router : routers) {
                if (router != null && !backend.canRoute(router)) {
                    throw new UnsupportedModelException(backend.deviceName() + " has no kernel for --routing "
                            + routing + " on this model (" + router + "): use --backend cpu");
                }
            }
        }
    }

    /**
     * The router of each MoE layer: softmax top-k, or DeepSeek's group-limited sigmoid router with the layer's
     * e_score_correction_bias, as {@code routing} changes it.
     */
    private static List<Router> routers(ModelConfig c, ModelWeights weights, RoutingSpec routing) {
        List<Router> list = new ArrayList<>();
        boolean[] moe = new boolean[weights.layers().size()];
        for (ModelWeights.Layer layer : weights.layers()) {
            Router own = layer.isMoe() ? RoutingSpec.modelRouter(c, layer.routerCorrectionBias()) : null;
            moe[list.size()] = own != null;
            list.add(own == null ? null : routing.router(own, list.size(), c.numExperts()));
        }
        routing.checkLayers(moe);
        return list;
    }

    /** Refuses, naming what is missing, a model whose ops the backend lacks. */
    static void requireSupported(ModelConfig config, Backend backend, String model) {
        List<String> missing = backend.unsupported(config);
        if (!missing.isEmpty()) {
            throw new UnsupportedModelException(backend.deviceName() + " cannot run the " + config.family().modelType
                    + " model " + model + ": it lacks " + String.join("; ", missing) + " (the CPU backend runs it)");
        }
    }

    /** Reads config.json and the safetensors of a Hugging Face model directory onto the backend. */
    public static Engine load(Path modelDirectory, Backend backend) {
        return load(modelDirectory, backend, LoadOptions.DEFAULT);
    }

    /** As {@link #load(Path, Backend)}, pruning the routed experts to a pattern by magnitude on the way (null: not). */
    public static Engine load(Path modelDirectory, Backend backend, SparsityPattern pruneExperts) {
        return load(modelDirectory, backend, LoadOptions.DEFAULT.withPruneExperts(pruneExperts));
    }

    /**
     * Reads config.json and the safetensors of a model directory onto the backend, as the options say. Under a
     * memory cap whose residency streams some layers' experts, the engine keeps the checkpoint open (they are read
     * from it at every forward) and closes it with itself.
     */
    public static Engine load(Path modelDirectory, Backend backend, LoadOptions options) {
        return load(modelDirectory, Devices.of(backend), options);
    }

    /**
     * As {@link #load(Path, Backend, LoadOptions)} on several devices ({@link EngineLoad}): device 0 holds all but the
     * routed experts, spread over the devices as {@link LoadOptions#placement} says. The caller owns the devices.
     */
    public static Engine load(Path modelDirectory, Devices devices, LoadOptions options) {
        return EngineLoad.load(modelDirectory, devices, options);
    }

    /** {@link #requireLoadable(ModelConfig, Path, Backend, long)} without a memory cap. */
    public static void requireLoadable(ModelConfig config, Path modelDirectory, Backend backend) {
        requireLoadable(config, modelDirectory, backend, 0);
    }

    /**
     * Refuses, before anything is read onto the backend, a model whose ops the backend lacks or that does not fit
     * its memory: all of it without a cap ({@code deviceMemory} 0), else its non-expert weights, two staging slots
     * and one sequence's activations under the cap ({@link ExpertResidency}). Several devices: {@link EngineLoad}.
     *
     * @throws UnsupportedModelException naming the model and what is missing, or the numbers that do not fit
     */
    public static void requireLoadable(ModelConfig config, Path modelDirectory, Backend backend, long deviceMemory) {
        requireSupported(config, backend, modelDirectory.toString());
        DeviceMemoryPlan.of(config, modelDirectory, List.of(backend), null, deviceMemory);
    }

    /** The model's memory on the backend, or null where the backend cannot tell; known before loading. */
    public static MemoryPlan memoryPlan(ModelConfig config, Path modelDirectory, Backend backend) {
        MemoryBudget budget = backend.memoryBudget();
        return budget == null ? null : MemoryPlan.of(config, SparsityPattern.ofCheckpoint(modelDirectory), budget);
    }

    public ModelConfig config() {
        return config;
    }

    public Backend backend() {
        return backend;
    }

    /** Which layers' routed experts are resident and which stream, and the largest batch that allows. */
    public ExpertResidency residency() {
        return weights.residency();
    }

    /** The routed experts' source, with its upload counts and the devices they run on. */
    public ExpertStore expertStore() {
        return experts;
    }

    /** Why a sequence cannot be scored, or null when it can. */
    public String validate(TokenBatch batch, int sequence) {
        int n = batch.length(sequence);
        if (n == 0) {
            return "empty sequence: there is nothing to score";
        }
        if (n > config.maxPositions()) {
            return "sequence of " + n + " tokens is longer than the model's max_position_embeddings ("
                    + config.maxPositions() + ")";
        }
        for (int i = 0; i < n; i++) {
            int id = batch.token(sequence, i);
            if (id < 0 || id >= config.vocabSize()) {
                return "token id " + id + " at position " + i + " is outside the vocabulary [0, "
                        + config.vocabSize() + ")";
            }
        }
        return null;
    }

    /**
     * Scores every sequence of the batch. A sequence that cannot be scored (empty, too long, a token outside
     * the vocabulary) gets an error in its result; the others are scored as if it were not there.
     */
    public ScoreBatch score(TokenBatch batch, ScoreOptions options) {
        return score(batch, options, null);
    }

    /**
     * {@link #score(TokenBatch, ScoreOptions)}, showing {@code seen} every routed expert's inputs (calibration;
     * null: nobody watches). A batch that runs out of device memory then fails instead of being split, since half
     * of it would have been shown already.
     */
    public ScoreBatch score(TokenBatch batch, ScoreOptions options, RoutedInputs seen) {
        int n = batch.numSequences();
        String[] errors = new String[n];
        List<Integer> valid = new ArrayList<>();
        for (int s = 0; s < n; s++) {
            errors[s] = validate(batch, s);
            if (errors[s] == null) {
                valid.add(s);
            }
        }
        ExpertLoad load = new ExpertLoad(config.numLayers(), config.numExperts());
        TokenRouting routing = options.tokenRouting() ? new TokenRouting() : null;
        SequenceScore[] scores = new SequenceScore[n];
        for (int s = 0; s < n; s++) {
            if (errors[s] != null) {
                scores[s] = SequenceScore.failed(batch.length(s), errors[s]);
            }
        }
        int splits = valid.isEmpty() ? 0 : scoreSplittingOnOom(batch, valid, options, scores, load, routing, seen);
        return new ScoreBatch(List.of(scores), load, splits, routing);
    }

    /**
     * Scores the sequences; where the device runs out of memory, scores each half separately (recursively).
     * A single sequence that does not fit gets an error. Returns how many times a batch was split.
     */
    private int scoreSplittingOnOom(TokenBatch batch, List<Integer> valid, ScoreOptions options,
                                    SequenceScore[] scores, ExpertLoad load, TokenRouting routing,
                                    RoutedInputs seen) {
        ExpertLoad attempt = new ExpertLoad(config.numLayers(), config.numExperts());
        TokenRouting attemptRouting = routing == null ? null : new TokenRouting();
        try {
            scoreValid(batch, valid, options, scores, attempt, attemptRouting, seen);
            load.add(attempt);
            if (routing != null) {
                routing.add(attemptRouting);
            }
            return 0;
        } catch (DeviceOutOfMemoryException e) {
            if (seen != null) {
                throw e;
            }
            if (valid.size() == 1) {
                int s = valid.get(0);
                scores[s] = SequenceScore.failed(batch.length(s), "does not fit in device memory: " + e.getMessage());
                return 0;
            }
            int half = valid.size() / 2;
            return 1 + scoreSplittingOnOom(batch, valid.subList(0, half), options, scores, load, routing, null)
                    + scoreSplittingOnOom(batch, valid.subList(half, valid.size()), options, scores, load, routing,
                    null);
        }
    }

    private void scoreValid(TokenBatch batch, List<Integer> valid, ScoreOptions options,
                            SequenceScore[] scores, ExpertLoad load, TokenRouting routing, RoutedInputs seen) {
        int numSeq = valid.size();
        int[] seqOffsets = new int[numSeq + 1];
        for (int i = 0; i < numSeq; i++) {
            seqOffsets[i + 1] = seqOffsets[i] + batch.length(valid.get(i));
        }
        int total = seqOffsets[numSeq];
        long largest = weights.residency().largestBatchTokens();
        if (total > largest) {  // split as if the device ran out: the cap leaves room for no more
            throw new DeviceOutOfMemoryException(total + " tokens are more than the " + largest + " a batch may "
                    + "hold under " + weights.residency().plan().budget().where());
        }
        int[] tokens = new int[total];
        int[] positions = new int[total];
        int[] targets = new int[total];
        int[] lastRows = new int[numSeq];
        for (int i = 0; i < numSeq; i++) {
            int start = seqOffsets[i];
            int len = seqOffsets[i + 1] - start;
            batch.copySequence(valid.get(i), tokens, start);
            for (int p = 0; p < len; p++) {
                positions[start + p] = p;
                targets[start + p] = p + 1 < len ? tokens[start + p + 1] : -1;
            }
            lastRows[i] = start + len - 1;
        }
        // the most likely tokens of the rows asked for: top-k after each sequence's last token, the argmax after
        // each position from argmaxFrom on (one list for the lm_head step: top-k's first entry is the argmax)
        int numTop = options.topK() > 0 ? numSeq : 0;
        int[] argmaxSlot = new int[numSeq];
        int numArgmax = 0;
        for (int i = 0; i < numSeq; i++) {
            argmaxSlot[i] = numTop + numArgmax;
            numArgmax += argmaxCount(options.argmaxFrom(valid.get(i)), seqOffsets[i + 1] - seqOffsets[i]);
        }
        int[] topRows = Arrays.copyOf(numTop > 0 ? lastRows : new int[0], numTop + numArgmax);
        for (int i = 0; i < numSeq; i++) {
            int from = options.argmaxFrom(valid.get(i));
            int count = argmaxCount(from, seqOffsets[i + 1] - seqOffsets[i]);
            for (int j = 0; j < count; j++) {
                topRows[argmaxSlot[i] + j] = seqOffsets[i] + from + j;
            }
        }
        if (seen != null) {
            seen.sequences(valid.stream().mapToInt(Integer::intValue).toArray(), seqOffsets.clone());
        }
        // each MoE layer's routing of the pass's rows, cut into the sequences' (only where asked: a host copy)
        ObjIntConsumer<HostExpertRouting> routed = routing == null ? null : (host, layer) -> {
            TokenRouting.Choices rows = host.choices(total);
            for (int i = 0; i < numSeq; i++) {
                routing.add(valid.get(i), layer, rows.slice(seqOffsets[i], seqOffsets[i + 1]));
            }
        };
        LogProbs logProbs = forward(tokens, positions, targets, seqOffsets, topRows,
                numArgmax > 0 ? Math.max(1, options.topK()) : options.topK(), load, routed, seen);
        float[] lp = logProbs.targetLogProbs();
        for (int i = 0; i < numSeq; i++) {
            int start = seqOffsets[i];
            int length = seqOffsets[i + 1] - start;
            int[] top = options.topK() > 0 ? logProbs.topTokens()[i] : null;
            SequenceScore score = SequenceScore.scored(length, lp, start, options.tokenLogProbs(), top);
            int from = options.argmaxFrom(valid.get(i));
            if (from >= 0) {
                int[] argmax = new int[argmaxCount(from, length)];
                for (int j = 0; j < argmax.length; j++) {
                    argmax[j] = logProbs.topTokens()[argmaxSlot[i] + j][0];
                }
                score = score.withArgmaxTokens(argmax);
            }
            scores[valid.get(i)] = score;
        }
    }

    /**
     * q, k and v of a forward: three activations, or where the layers' projections are stacked ({@link
     * ModelWeights.Layer#qkv}) one activation [q | k | v] and its column views.
     */
    private record Projections(Tensor stacked, Tensor q, Tensor k, Tensor v) implements AutoCloseable {
        @Override
        public void close() {
            for (Tensor x : new Tensor[] {q, k, v, stacked}) {
                if (x != null) {
                    x.close();
                }
            }
        }
    }

    private Projections projections(int t) {
        ModelConfig c = config;
        if (weights.layers().isEmpty() || weights.layers().get(0).qkv() == null) {
            return new Projections(null, backend.activation(t, c.qDim()), backend.activation(t, c.kvDim()),
                    backend.activation(t, c.vDim()));
        }
        Tensor stacked = backend.activation(t, c.qDim() + c.kvDim() + c.vDim());
        Tensor[] views = backend.columns(stacked, c.qDim(), c.kvDim(), c.vDim());
        return new Projections(stacked, views[0], views[1], views[2]);
    }

    /** How many argmax tokens a sequence of {@code length} gets from position {@code from} (-1: none). */
    private static int argmaxCount(int from, int length) {
        if (from >= length) {
            throw new IllegalArgumentException("argmaxFrom " + from + " is past the sequence's last position "
                    + (length - 1));
        }
        return from < 0 ? 0 : length - 1 - from;
    }

    /** The decoder over packed sequences; returns the log-prob of each row's target and top tokens of topRows. */
    private LogProbs forward(int[] tokenIds, int[] positionIds, int[] targetIds, int[] seqOffsetArray,
                             int[] topRows, int topK, ExpertLoad load, ObjIntConsumer<HostExpertRouting> routed,
                             RoutedInputs seen) {
        ModelConfig c = config;
        int t = tokenIds.length;
        int h = c.hiddenSize();
        Multipliers m = c.multipliers();
        try (IntTensor tokens = backend.ints(tokenIds);
             IntTensor positions = backend.ints(positionIds);
             IntTensor targets = backend.ints(targetIds);
             IntTensor seqOffsets = backend.ints(seqOffsetArray);
             Tensor x = backend.activation(t, h);
             // rmsnorm(x) before the attention block (q, k, v) and lm_head, and before the feed-forward block
             Tensor normed = backend.normedActivation(t, h);
             Tensor ffnIn = backend.normedActivation(t, h);
             Projections qkv = projections(t);
             Tensor attn = backend.activation(t, c.attentionOutDim());
             Tensor mixed = backend.activation(t, h);
             Tensor routerLogits = backend.activation(t, c.numExperts());
             ExpertStore.Pass routedExperts = experts.pass()) {
            // x = embedding[tokens] (x embedding_multiplier); normed = rmsnorm(x) for the first layer (every later
            // norm comes with the residual add before it: x += delta; normed = rmsnorm(x), one backend op)
            backend.embed(weights.embedding(), tokens, x);
            if (m.embedding() != 1f) {
                backend.scale(x, m.embedding());
            }
            List<ModelWeights.Layer> layers = weights.layers();
            backend.rmsNorm(x, layers.isEmpty() ? weights.finalNorm() : layers.get(0).inputNorm(), h,
                    c.rmsNormEps(), normed);
            AttentionHeads heads = new AttentionHeads(c.numHeads(), c.numKvHeads(), c.headDim(), c.vHeadDim(),
                    c.attentionScale());
            for (int l = 0; l < c.numLayers(); l++) {
                ModelWeights.Layer layer = layers.get(l);
                // attention block: x += o( attention( rope(q), rope(k), v ) ), q k v from normed = rmsnorm(x)
                Tensor q = qkv.q();
                Tensor k = qkv.k();
                Tensor v = qkv.v();
                if (layer.latent() != null) {
                    latentQkv(layer, normed, positions, q, k, v);
                } else {
                    if (layer.qkv() != null) {  // [q | k | v] = normed [Wq | Wk | Wv]^T, one product
                        backend.linear(normed, layer.qkv(), null, qkv.stacked());
                    } else {
                        backend.linear(normed, layer.q(), layer.qBias(), q);
                        backend.linear(normed, layer.k(), layer.kBias(), k);
                        backend.linear(normed, layer.v(), layer.vBias(), v);
                    }
                    ModelConfig.QkNorm qkNorm = c.qkNorm();
                    boolean clip = !Float.isNaN(c.clipQkv());
                    if (qkNorm == ModelConfig.QkNorm.WHOLE_PROJECTION && clip) {  // the clamp comes in between
                        backend.rmsNorm(q, layer.qNorm(), c.qDim(), c.rmsNormEps(), q);
                        backend.rmsNorm(k, layer.kNorm(), c.kvDim(), c.rmsNormEps(), k);
                        qkNorm = ModelConfig.QkNorm.NONE;
                    }
                    if (clip) {
                        backend.clamp(q, c.clipQkv());
                        backend.clamp(k, c.clipQkv());
                        backend.clamp(v, c.clipQkv());
                    }
                    // q, k = rope(rmsnorm(q)), rope(rmsnorm(k)): norms per head or over the whole projection (as
                    // the model has them), rotary embedding on the first rotaryDim columns of each head (all of
                    // them but in GLM-4.5); one pass where the backend can
                    ColumnBlocks qHeads = new ColumnBlocks(0, c.headDim(), c.numHeads(), c.rope().rotaryDim());
                    ColumnBlocks kHeads = new ColumnBlocks(0, c.headDim(), c.numKvHeads(), c.rope().rotaryDim());
                    // (attention alone reads them next: a backend may keep them only as its attention reads them)
                    if (qkNorm == ModelConfig.QkNorm.NONE) {
                        backend.ropeForAttention(q, qHeads, c.rope(), positions);
                        backend.ropeForAttention(k, kHeads, c.rope(), positions);
                    } else {
                        boolean whole = qkNorm == ModelConfig.QkNorm.WHOLE_PROJECTION;
                        backend.rmsNormRopeForAttention(q, layer.qNorm(), whole ? c.qDim() : c.headDim(),
                                c.rmsNormEps(), qHeads, c.rope(), positions);
                        backend.rmsNormRopeForAttention(k, layer.kNorm(), whole ? c.kvDim() : c.headDim(),
                                c.rmsNormEps(), kHeads, c.rope(), positions);
                    }
                }
                // attn = softmax(scale q.k^T, causal, windowed) v per head
                // (gpt-oss: with the layer's sinks, one more logit per head in the softmax denominator; null: none)
                backend.attention(q, k, v, seqOffsets, heads, c.slidingWindow()[l], layer.sinks(), attn);
                backend.linear(attn, layer.o(), layer.oBias(), mixed);
                // x += mixed (x residual_multiplier); ffnIn = rmsnorm(x)
                if (m.residual() != 1f) {
                    backend.scale(mixed, m.residual());
                }
                // (products alone read ffnIn next unless a one-row shared-expert gate, an observer or experts on
                // other devices read its fp32 values: then the backend keeps them)
                if (layer.sharedExpertGate() == null && seen == null && !expertDevices.spread()) {
                    backend.addRmsNormForProducts(x, mixed, layer.postAttentionNorm(), c.rmsNormEps(), ffnIn);
                } else {
                    backend.addRmsNorm(x, mixed, layer.postAttentionNorm(), c.rmsNormEps(), ffnIn);
                }

                // feed-forward block: x += moe(ffnIn) (+ shared experts) or dense ffn(ffnIn)
                if (layer.isMoe()) {
                    // router logits = ffnIn router^T (+ gpt-oss's router bias)
                    backend.linear(ffnIn, layer.router(), layer.routerBias(), routerLogits);
                    try (ExpertRouting routing = backend.route(routerLogits, routers.get(l), seqOffsetArray)) {
                        int layerIndex = l;
                        // the layer's experts: resident, or streamed into a staging slot; the next streamed
                        // layer's upload is queued before these compute, and this one's slot freed after
                        ExpertWeights layerExperts = routedExperts.get(l);
                        routedExperts.prefetchNext(l);
                        expertDevices.run(l, ffnIn, routing, layerExperts, mixed, seen == null ? null
                                : (expert, xs, rows, hidden, swiglu, ffn) ->
                                        seen.accept(layerIndex, expert, xs, rows, hidden, swiglu, ffn));
                        routedExperts.release(l);
                        // asked once the experts are queued: a GPU's counts arrive while they run
                        load.add(l, routing.tokensPerExpert());
                        if (routed != null) {
                            routed.accept(routing.toHost(), l);
                        }
                    }
                    if (layer.sharedExpert() != null) {
                        addSharedExpert(layer, ffnIn, mixed, t);
                    }
                } else {
                    backend.ffn(ffnIn, layer.denseFfn(), mixed);
                }
                // x += mixed (x residual_multiplier); normed = rmsnorm(x) with the next layer's input norm, after
                // the last the final norm (products alone read it next: q, k, v or lm_head)
                if (m.residual() != 1f) {
                    backend.scale(mixed, m.residual());
                }
                backend.addRmsNormForProducts(x, mixed, l + 1 < layers.size() ? layers.get(l + 1).inputNorm()
                        : weights.finalNorm(), c.rmsNormEps(), normed);
            }
            // log p(target) = log_softmax(normed lm_head^T / logits_scaling)[target], normed = rmsnorm(x), final norm
            return backend.logProbs(normed, weights.lmHead(), targets, topRows, topK, m.logitsDivisor());
        }
    }

    /**
     * DeepSeek's multi-head latent attention, into q, k [T, heads x (nope + rope)] and v [T, heads x v_head_dim]:
     * <pre>
     *   q          = q_proj(x)  or  q_b_proj(rmsnorm(q_a_proj(x)))          per head: [q_nope | q_rope]
     *   [c | kRot] = kv_a_proj_with_mqa(x)                                c: kv_lora_rank, kRot: qk_rope_head_dim
     *   kv         = kv_b_proj(rmsnorm(c))                                per head: [k_nope | v]
     *   k          = [k_nope | rope(kRot)] per head (one rotary key shared by every head);  q_rope = rope(q_rope)
     * </pre>
     */
    private void latentQkv(ModelWeights.Layer layer, Tensor normed, IntTensor positions, Tensor q, Tensor k,
                           Tensor v) {
        ModelConfig c = config;
        LatentAttention mla = c.latentAttention();
        ModelWeights.Latent w = layer.latent();
        int t = normed.rows();
        int n = c.numHeads();
        int nope = mla.qkNopeHeadDim();
        int rope = mla.qkRopeHeadDim();
        int kvb = nope + mla.vHeadDim();
        float eps = LatentAttention.LATENT_NORM_EPS;
        Rope r = c.rope();
        try (Tensor kvA = backend.activation(t, mla.kvLoraRank() + rope);
             Tensor latent = backend.activation(t, mla.kvLoraRank());
             Tensor kRot = backend.activation(t, rope);
             Tensor kv = backend.activation(t, n * kvb)) {
            if (w.qA() == null) {
                backend.linear(normed, layer.q(), null, q);
            } else {
                try (Tensor qLatent = backend.activation(t, mla.qLoraRank())) {
                    backend.linear(normed, w.qA(), w.qABias(), qLatent);
                    backend.rmsNorm(qLatent, w.qANorm(), mla.qLoraRank(), eps, qLatent);
                    backend.linear(qLatent, w.qB(), null, q);
                }
            }
            backend.linear(normed, w.kvA(), w.kvABias(), kvA);
            backend.copyColumns(kvA, ColumnBlocks.span(0, mla.kvLoraRank()), latent,
                    ColumnBlocks.span(0, mla.kvLoraRank()));
            backend.copyColumns(kvA, ColumnBlocks.span(mla.kvLoraRank(), rope), kRot, ColumnBlocks.span(0, rope));
            backend.rmsNorm(latent, w.kvANorm(), mla.kvLoraRank(), eps, latent);
            backend.linear(latent, w.kvB(), null, kv);
            // rotary embedding on q's last qk_rope_head_dim columns of each head, and on the shared key
            backend.rope(q, new ColumnBlocks(nope, c.headDim(), n, rope), r, positions);
            backend.rope(kRot, ColumnBlocks.span(0, rope), r, positions);
            if (nope > 0) {
                backend.copyColumns(kv, new ColumnBlocks(0, kvb, n, nope), k,
                        new ColumnBlocks(0, c.headDim(), n, nope));
            }
            backend.copyColumns(kRot, new ColumnBlocks(0, 0, n, rope), k, new ColumnBlocks(nope, c.headDim(), n, rope));
            backend.copyColumns(kv, new ColumnBlocks(nope, kvb, n, mla.vHeadDim()), v,
                    ColumnBlocks.heads(n, mla.vHeadDim()));
        }
    }

    /**
     * The shared expert(s): mixed += sigmoid(x . w_gate) * shared_expert(x) (Qwen2-MoE), or mixed +=
     * shared_experts(x) where ungated (DeepSeek-V3, GLM-4.5).
     */
    private void addSharedExpert(ModelWeights.Layer layer, Tensor normed, Tensor mixed, int t) {
        try (Tensor shared = backend.activation(t, config.hiddenSize())) {
            backend.ffn(normed, layer.sharedExpert(), shared);
            if (layer.sharedExpertGate() == null) {
                backend.addInPlace(mixed, shared);
                return;
            }
            try (Tensor gateLogit = backend.activation(t, 1)) {
                backend.linear(normed, layer.sharedExpertGate(), null, gateLogit);
                backend.addSigmoidGated(mixed, shared, gateLogit);
            }
        }
    }

    /** Releases the weights (and the checkpoint streamed experts are read from); the backend stays with its owner. */
    @Override
    public void close() {
        weights.close();
        expertDevices.close();
        if (streamedFrom != null) {
            streamedFrom.close();
        }
    }
}
