package io.moescore.engine;

import io.moescore.batch.ExpertLoad;
import io.moescore.batch.ScoreBatch;
import io.moescore.batch.SequenceScore;
import io.moescore.batch.TokenBatch;
import io.moescore.routing.ExpertRouting;
import io.moescore.routing.Router;
import io.moescore.routing.TopKSoftmaxRouter;

import io.moescore.backend.Backend;
import io.moescore.backend.DeviceOutOfMemoryException;
import io.moescore.backend.IntTensor;
import io.moescore.backend.LogProbs;
import io.moescore.backend.Tensor;
import io.moescore.model.Checkpoint;
import io.moescore.model.ModelConfig;
import io.moescore.sparse.SparsityPattern;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Scores token sequences with one model on one backend: the whole decoder forward pass (prefill only; scoring
 * needs no KV cache), written once against {@link Backend}. Thread-safe: each call allocates its own
 * activations, so concurrent tasks may share one engine.
 */
public final class Engine implements AutoCloseable {
    private final ModelConfig config;
    private final Backend backend;
    private final ModelWeights weights;
    private final Router router;

    public Engine(ModelConfig config, Backend backend, ModelWeights weights) {
        this.config = config;
        this.backend = backend;
        this.weights = weights;
        this.router = new TopKSoftmaxRouter(config.topK(), config.normalizeTopK());
    }

    /** Reads config.json and the safetensors of a Hugging Face model directory onto the backend. */
    public static Engine load(Path modelDirectory, Backend backend) {
        return load(modelDirectory, backend, LoadOptions.DEFAULT);
    }

    /** As {@link #load(Path, Backend)}, pruning the routed experts to a pattern by magnitude on the way (null: not). */
    public static Engine load(Path modelDirectory, Backend backend, SparsityPattern pruneExperts) {
        return load(modelDirectory, backend, LoadOptions.DEFAULT.withPruneExperts(pruneExperts));
    }

    /** Reads config.json and the safetensors of a model directory onto the backend, as the options say. */
    public static Engine load(Path modelDirectory, Backend backend, LoadOptions options) {
        ModelConfig config = ModelConfig.load(modelDirectory);
        try (Checkpoint checkpoint = Checkpoint.open(modelDirectory)) {
            return new Engine(config, backend, ModelWeights.load(backend, config, checkpoint, options));
        }
    }

    public ModelConfig config() {
        return config;
    }

    public Backend backend() {
        return backend;
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
        SequenceScore[] scores = new SequenceScore[n];
        for (int s = 0; s < n; s++) {
            if (errors[s] != null) {
                scores[s] = SequenceScore.failed(batch.length(s), errors[s]);
            }
        }
        int splits = valid.isEmpty() ? 0 : scoreSplittingOnOom(batch, valid, options, scores, load, seen);
        return new ScoreBatch(List.of(scores), load, splits);
    }

    /**
     * Scores the sequences; where the device runs out of memory, scores each half separately (recursively).
     * A single sequence that does not fit gets an error. Returns how many times a batch was split.
     */
    private int scoreSplittingOnOom(TokenBatch batch, List<Integer> valid, ScoreOptions options,
                                    SequenceScore[] scores, ExpertLoad load, RoutedInputs seen) {
        ExpertLoad attempt = new ExpertLoad(config.numLayers(), config.numExperts());
        try {
            scoreValid(batch, valid, options, scores, attempt, seen);
            load.add(attempt);
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
            return 1 + scoreSplittingOnOom(batch, valid.subList(0, half), options, scores, load, null)
                    + scoreSplittingOnOom(batch, valid.subList(half, valid.size()), options, scores, load, null);
        }
    }

    private void scoreValid(TokenBatch batch, List<Integer> valid, ScoreOptions options,
                            SequenceScore[] scores, ExpertLoad load, RoutedInputs seen) {
        int numSeq = valid.size();
        int[] seqOffsets = new int[numSeq + 1];
        for (int i = 0; i < numSeq; i++) {
            seqOffsets[i + 1] = seqOffsets[i] + batch.length(valid.get(i));
        }
        int total = seqOffsets[numSeq];
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
        LogProbs logProbs = forward(tokens, positions, targets, seqOffsets,
                options.topK() > 0 ? lastRows : new int[0], options.topK(), load, seen);
        float[] lp = logProbs.targetLogProbs();
        for (int i = 0; i < numSeq; i++) {
            int start = seqOffsets[i];
            int[] top = options.topK() > 0 ? logProbs.topTokens()[i] : null;
            scores[valid.get(i)] = SequenceScore.scored(seqOffsets[i + 1] - start, lp, start,
                    options.tokenLogProbs(), top);
        }
    }

    /** The decoder over packed sequences; returns the log-prob of each row's target and top tokens of topRows. */
    private LogProbs forward(int[] tokenIds, int[] positionIds, int[] targetIds, int[] seqOffsetArray,
                             int[] topRows, int topK, ExpertLoad load, RoutedInputs seen) {
        ModelConfig c = config;
        int t = tokenIds.length;
        int h = c.hiddenSize();
        try (IntTensor tokens = backend.ints(tokenIds);
             IntTensor positions = backend.ints(positionIds);
             IntTensor targets = backend.ints(targetIds);
             IntTensor seqOffsets = backend.ints(seqOffsetArray);
             Tensor x = backend.activation(t, h);
             // rmsnorm(x) before the attention block (q, k, v) and lm_head, and before the feed-forward block
             Tensor normed = backend.normedActivation(t, h);
             Tensor ffnIn = backend.normedActivation(t, h);
             Tensor q = backend.activation(t, c.qDim());
             Tensor k = backend.activation(t, c.kvDim());
             Tensor v = backend.activation(t, c.kvDim());
             Tensor attn = backend.activation(t, c.qDim());
             Tensor mixed = backend.activation(t, h);
             Tensor routerLogits = backend.activation(t, c.numExperts())) {
            // x = embedding[tokens]; normed = rmsnorm(x) for the first layer (every later norm comes with the
            // residual add before it: x += delta; normed = rmsnorm(x), one backend op)
            backend.embed(weights.embedding(), tokens, x);
            List<ModelWeights.Layer> layers = weights.layers();
            backend.rmsNorm(x, layers.isEmpty() ? weights.finalNorm() : layers.get(0).inputNorm(), h,
                    c.rmsNormEps(), normed);
            for (int l = 0; l < c.numLayers(); l++) {
                ModelWeights.Layer layer = layers.get(l);
                // attention block: x += o( attention( rope(q), rope(k), v ) ), q k v from normed = rmsnorm(x)
                backend.linear(normed, layer.q(), layer.qBias(), q);
                backend.linear(normed, layer.k(), layer.kBias(), k);
                backend.linear(normed, layer.v(), layer.vBias(), v);
                if (c.qkNorm() == ModelConfig.QkNorm.WHOLE_PROJECTION) {
                    backend.rmsNorm(q, layer.qNorm(), c.qDim(), c.rmsNormEps(), q);
                    backend.rmsNorm(k, layer.kNorm(), c.kvDim(), c.rmsNormEps(), k);
                }
                if (!Float.isNaN(c.clipQkv())) {
                    backend.clamp(q, c.clipQkv());
                    backend.clamp(k, c.clipQkv());
                    backend.clamp(v, c.clipQkv());
                }
                if (c.qkNorm() == ModelConfig.QkNorm.PER_HEAD) {
                    backend.rmsNorm(q, layer.qNorm(), c.headDim(), c.rmsNormEps(), q);
                    backend.rmsNorm(k, layer.kNorm(), c.headDim(), c.rmsNormEps(), k);
                }
                backend.rope(q, c.headDim(), positions, c.ropeTheta());
                backend.rope(k, c.headDim(), positions, c.ropeTheta());
                backend.attention(q, k, v, seqOffsets, c.numHeads(), c.numKvHeads(), c.headDim(),
                        c.slidingWindow()[l], attn);
                backend.linear(attn, layer.o(), layer.oBias(), mixed);
                // x += mixed; ffnIn = rmsnorm(x)
                backend.addRmsNorm(x, mixed, layer.postAttentionNorm(), c.rmsNormEps(), ffnIn);

                // feed-forward block: x += moe(ffnIn) or dense ffn(ffnIn)
                if (layer.isMoe()) {
                    backend.linear(ffnIn, layer.router(), null, routerLogits);
                    try (ExpertRouting routing = backend.route(routerLogits, router)) {
                        load.add(l, routing.tokensPerExpert());
                        int layerIndex = l;
                        backend.experts(ffnIn, routing, layer.experts(), mixed, seen == null ? null
                                : (expert, xs, rows, hidden, swiglu, ffn) ->
                                        seen.accept(layerIndex, expert, xs, rows, hidden, swiglu, ffn));
                    }
                    if (layer.sharedExpert() != null) {
                        addSharedExpert(layer, ffnIn, mixed, t);
                    }
                } else {
                    backend.ffn(ffnIn, layer.denseFfn(), mixed);
                }
                // x += mixed; normed = rmsnorm(x) with the next layer's input norm, after the last the final norm
                backend.addRmsNorm(x, mixed, l + 1 < layers.size() ? layers.get(l + 1).inputNorm()
                        : weights.finalNorm(), c.rmsNormEps(), normed);
            }
            // log p(target) = log_softmax(normed lm_head^T)[target], normed = rmsnorm(x) with the final norm
            return backend.logProbs(normed, weights.lmHead(), targets, topRows, topK);
        }
    }

    /** mixed += sigmoid(x . w_gate) * shared_expert(x) (Qwen2-MoE). */
    private void addSharedExpert(ModelWeights.Layer layer, Tensor normed, Tensor mixed, int t) {
        try (Tensor shared = backend.activation(t, config.hiddenSize());
             Tensor gateLogit = backend.activation(t, 1)) {
            backend.ffn(normed, layer.sharedExpert(), shared);
            backend.linear(normed, layer.sharedExpertGate(), null, gateLogit);
            backend.addSigmoidGated(mixed, shared, gateLogit);
        }
    }

    /** Releases the weights; the backend stays with its owner. */
    @Override
    public void close() {
        weights.close();
    }
}
