package io.moescore.model;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;

/**
 * Every config.json field that changes the math of a forward pass, for the families we support.
 * Parsed in one place ({@link #parse}); a field we would have to ignore to load the model is an error.
 *
 * @param family             the model_type
 * @param headDim            per-head width (explicit in config or hidden / heads)
 * @param denseFfnSize       ffn width of the dense MLP in layers that are not MoE (0 when every layer is MoE)
 * @param expertFfnSize      ffn width of each routed expert
 * @param sharedExpertSize   ffn width of the shared expert (0: none); it is gated by sigmoid(x . w_gate)
 * @param normalizeTopK      renormalise the top-k router probabilities to sum to one
 * @param qkvBias            q, k and v projections carry a bias
 * @param outputBias         the output projection carries a bias
 * @param clipQkv            clamp q, k and v to [-clipQkv, clipQkv] (NaN: no clamp)
 * @param slidingWindow      per layer, the attention window in tokens (0: full causal attention)
 * @param moeLayers          per layer, true where the MLP is a routed MoE block
 */
public record ModelConfig(
        Family family,
        int vocabSize,
        int hiddenSize,
        int numLayers,
        int numHeads,
        int numKvHeads,
        int headDim,
        int denseFfnSize,
        int expertFfnSize,
        int numExperts,
        int topK,
        boolean normalizeTopK,
        int sharedExpertSize,
        float rmsNormEps,
        double ropeTheta,
        int maxPositions,
        boolean tieWordEmbeddings,
        boolean qkvBias,
        boolean outputBias,
        QkNorm qkNorm,
        float clipQkv,
        int[] slidingWindow,
        boolean[] moeLayers) {

    public static final String FILE = "config.json";

    /** The supported model_type values. */
    public enum Family {
        MIXTRAL("mixtral"), QWEN2_MOE("qwen2_moe"), QWEN3_MOE("qwen3_moe"), OLMOE("olmoe");

        public final String modelType;

        Family(String modelType) {
            this.modelType = modelType;
        }
    }

    /** Where q/k RMSNorm applies: nowhere, per head over head_dim (Qwen3), or over the whole projection (OLMoE). */
    public enum QkNorm { NONE, PER_HEAD, WHOLE_PROJECTION }

    /** More layers than any model has: a config asking for more is refused before anything is sized by it. */
    public static final int MAX_LAYERS = 1024;
    /** More routed experts per layer than any supported model has (the expert load is layers x experts). */
    public static final int MAX_EXPERTS = 16384;

    public ModelConfig {
        require(vocabSize > 0 && hiddenSize > 0 && numLayers > 0 && numHeads > 0 && numKvHeads > 0 && headDim > 0,
                "sizes must be positive");
        require(numLayers <= MAX_LAYERS, "num_hidden_layers " + numLayers + " is more than the " + MAX_LAYERS
                + " layers moescore supports");
        require(numExperts <= MAX_EXPERTS, "num_experts " + numExperts + " is more than the " + MAX_EXPERTS
                + " routed experts per layer moescore supports");
        require((long) numHeads * headDim <= Integer.MAX_VALUE, "num_attention_heads x head_dim = " + numHeads
                + " x " + headDim + " = " + (long) numHeads * headDim + " is beyond the largest dimension moescore"
                + " supports (2^31 - 1)");
        require(rmsNormEps > 0 && Float.isFinite(rmsNormEps), "rms_norm_eps must be a positive number, found "
                + rmsNormEps);
        require(Float.isNaN(clipQkv) || clipQkv > 0, "clip_qkv must be a positive number, found " + clipQkv);
        require(denseFfnSize >= 0 && sharedExpertSize >= 0 && expertFfnSize >= 0, "ffn widths must not be negative");
        require(numHeads % numKvHeads == 0, "num_attention_heads " + numHeads
                + " is not a multiple of num_key_value_heads " + numKvHeads);
        require(headDim % 2 == 0, "head_dim " + headDim + " must be even for rotary embeddings");
        require(numExperts > 0 && topK > 0 && topK <= numExperts, "num_experts_per_tok " + topK
                + " must lie in [1, num_experts=" + numExperts + "]");
        require(slidingWindow.length == numLayers && moeLayers.length == numLayers, "per-layer settings must cover "
                + numLayers + " layers");
        require(maxPositions > 0, "max_position_embeddings must be positive");
        for (int l = 0; l < numLayers; l++) {
            require(moeLayers[l] ? expertFfnSize > 0 : denseFfnSize > 0, "layer " + l + " has no ffn width");
            require(slidingWindow[l] >= 0, "layer " + l + " has a negative sliding window " + slidingWindow[l]);
        }
    }

    // The config.json fields behind each weight dimension, named in a shape mismatch (ConfigDim).

    public ConfigDim dimHidden() {
        return ConfigDim.of("hidden_size", hiddenSize);
    }

    public ConfigDim dimVocab() {
        return ConfigDim.of("vocab_size", vocabSize);
    }

    public ConfigDim dimHead() {
        return ConfigDim.of("head_dim", headDim);
    }

    /** Rows of q_proj: num_attention_heads x head_dim. */
    public ConfigDim dimQ() {
        return ConfigDim.of("num_attention_heads", numHeads).times(dimHead());
    }

    /** Rows of k_proj and v_proj: num_key_value_heads x head_dim. */
    public ConfigDim dimKv() {
        return ConfigDim.of("num_key_value_heads", numKvHeads).times(dimHead());
    }

    public ConfigDim dimExperts() {
        return ConfigDim.of(family == Family.MIXTRAL ? "num_local_experts" : "num_experts", numExperts);
    }

    public ConfigDim dimExpertFfn() {
        return ConfigDim.of(family == Family.QWEN2_MOE || family == Family.QWEN3_MOE ? "moe_intermediate_size"
                : "intermediate_size", expertFfnSize);
    }

    public ConfigDim dimDenseFfn() {
        return ConfigDim.of("intermediate_size", denseFfnSize);
    }

    public ConfigDim dimSharedFfn() {
        return ConfigDim.of("shared_expert_intermediate_size", sharedExpertSize);
    }

    public int qDim() {
        return numHeads * headDim;
    }

    public int kvDim() {
        return numKvHeads * headDim;
    }

    /** The config of a model directory: {@value #FILE}. */
    public static ModelConfig load(Path modelDirectory) {
        Path file = ModelDirectory.require(modelDirectory, FILE);
        JsonNode root = ModelJson.read(file, "model config");
        if (root == null || !root.isObject()) {
            throw new ModelFormatException(file + " is not a JSON object");
        }
        return parse(root, file.toString());
    }

    /** Parses a config.json tree; {@code source} names it in errors. */
    public static ModelConfig parse(JsonNode root, String source) {
        return new Parser(root, source).parse();
    }

    private static void require(boolean condition, String message) {
        if (!condition) {
            throw new ModelFormatException("config: " + message);
        }
    }

    @Override
    public String toString() {
        return family.modelType + "(vocab " + vocabSize + ", hidden " + hiddenSize + ", layers " + numLayers
                + ", heads " + numHeads + "/" + numKvHeads + " x " + headDim + ", experts " + numExperts + " top-"
                + topK + " ffn " + expertFfnSize + (sharedExpertSize > 0 ? ", shared " + sharedExpertSize : "")
                + ", moe layers " + Arrays.toString(moeLayers) + ")";
    }

    private static final class Parser {
        private final JsonNode root;
        private final String source;

        Parser(JsonNode root, String source) {
            this.root = root;
            this.source = source;
        }

        ModelConfig parse() {
            String modelType = text("model_type", null);
            Family family = null;
            for (Family f : Family.values()) {
                if (f.modelType.equals(modelType)) {
                    family = f;
                }
            }
            if (family == null) {
                throw error("model_type " + (modelType == null ? "is missing" : "'" + modelType + "' is not supported")
                        + " (supported: mixtral, qwen2_moe, qwen3_moe, olmoe)");
            }
            String act = text("hidden_act", "silu");
            if (!act.equals("silu")) {
                throw error("hidden_act '" + act + "' is not supported (only silu: SwiGLU experts)");
            }
            int hidden = positive("hidden_size");
            int layers = bounded("num_hidden_layers", MAX_LAYERS);
            int heads = positive("num_attention_heads");
            int kvHeads = root.hasNonNull("num_key_value_heads") ? positive("num_key_value_heads") : heads;
            int headDim = root.hasNonNull("head_dim") ? positive("head_dim") : 0;
            if (headDim == 0) {
                if (hidden % heads != 0) {
                    throw error("hidden_size " + hidden + " is not a multiple of num_attention_heads " + heads
                            + " and head_dim is not given");
                }
                headDim = hidden / heads;
            }
            // transformers renamed num_local_experts <-> num_experts between families and versions: take either.
            int experts = root.hasNonNull("num_local_experts") ? bounded("num_local_experts", MAX_EXPERTS)
                    : bounded("num_experts", MAX_EXPERTS);
            int topK = positive("num_experts_per_tok");

            boolean[] moe = new boolean[layers];
            int denseFfn = 0;
            int expertFfn;
            int shared = 0;
            boolean normTopK;
            boolean qkvBias = false;
            boolean outBias = false;
            QkNorm qkNorm = QkNorm.NONE;
            float clip = Float.NaN;
            switch (family) {
                case MIXTRAL -> {
                    expertFfn = integer("intermediate_size");
                    Arrays.fill(moe, true);
                    normTopK = true;
                }
                case OLMOE -> {
                    expertFfn = integer("intermediate_size");
                    Arrays.fill(moe, true);
                    normTopK = bool("norm_topk_prob", false);
                    qkvBias = outBias = bool("attention_bias", false);
                    qkNorm = QkNorm.WHOLE_PROJECTION;
                    if (root.hasNonNull("clip_qkv")) {
                        clip = positiveFloat("clip_qkv");
                    }
                }
                case QWEN2_MOE, QWEN3_MOE -> {
                    expertFfn = integer("moe_intermediate_size");
                    denseFfn = optionalNonNegative("intermediate_size", 0);
                    int step = optionalInt("decoder_sparse_step", 1);
                    if (step < 1) {
                        throw error("decoder_sparse_step " + step + " must be at least 1");
                    }
                    Set<Integer> mlpOnly = intSet("mlp_only_layers", layers);
                    for (int l = 0; l < layers; l++) {
                        moe[l] = !mlpOnly.contains(l) && (l + 1) % step == 0;
                    }
                    if (family == Family.QWEN2_MOE) {
                        normTopK = bool("norm_topk_prob", false);
                        qkvBias = bool("qkv_bias", true);
                        shared = optionalNonNegative("shared_expert_intermediate_size", 0);
                    } else {
                        normTopK = bool("norm_topk_prob", true);
                        qkvBias = outBias = bool("attention_bias", false);
                        qkNorm = QkNorm.PER_HEAD;
                    }
                }
                default -> throw new IllegalStateException();
            }
            checkRopeScaling();
            int[] window = slidingWindows(family, layers);
            try {
                return new ModelConfig(family, positive("vocab_size"), hidden, layers, heads, kvHeads, headDim,
                        denseFfn, expertFfn, experts, topK, normTopK, shared,
                        root.hasNonNull("rms_norm_eps") ? positiveFloat("rms_norm_eps") : 1e-6f, ropeTheta(),
                        optionalInt("max_position_embeddings", 4096), bool("tie_word_embeddings", false),
                        qkvBias, outBias, qkNorm, clip, window, moe);
            } catch (ModelFormatException e) {
                throw error(e.getMessage().replaceFirst("^config: ", ""));
            }
        }

        /** rope_theta at the top level (transformers 4) or inside rope_parameters (transformers 5). */
        private double ropeTheta() {
            JsonNode params = root.get("rope_parameters");
            JsonNode theta = params != null && params.isObject() && params.hasNonNull("rope_theta")
                    ? params.get("rope_theta") : root.get("rope_theta");
            if (theta == null || theta.isNull()) {
                return 10000.0;
            }
            if (!theta.isNumber() || !(theta.asDouble() > 0) || Double.isInfinite(theta.asDouble())) {
                throw error("rope_theta must be a positive number, found " + theta);
            }
            return theta.asDouble();
        }

        /** Only the plain rotary embedding is implemented: any other scaling would silently change every score. */
        private void checkRopeScaling() {
            for (String key : new String[] {"rope_scaling", "rope_parameters"}) {
                JsonNode node = root.get(key);
                if (node == null || node.isNull()) {
                    continue;
                }
                JsonNode type = node.has("rope_type") ? node.get("rope_type") : node.get("type");
                if (type != null && !type.isNull() && !type.asText().equals("default")) {
                    throw error(key + " asks for rope type '" + type.asText()
                            + "', which is not implemented (only 'default' rotary embeddings are)");
                }
                JsonNode partial = node.get("partial_rotary_factor");
                if (partial != null && !partial.isNull() && partial.asDouble() != 1.0) {
                    throw error(key + ".partial_rotary_factor " + partial + " is not supported");
                }
            }
            if (root.hasNonNull("partial_rotary_factor") && root.get("partial_rotary_factor").asDouble() != 1.0) {
                throw error("partial_rotary_factor " + root.get("partial_rotary_factor") + " is not supported");
            }
        }

        private int[] slidingWindows(Family family, int layers) {
            int[] window = new int[layers];
            int size = optionalNonNegative("sliding_window", 0);
            JsonNode types = root.get("layer_types");
            if (types != null && types.isArray()) {
                if (types.size() != layers) {
                    throw error("layer_types lists " + types.size() + " layers but num_hidden_layers is " + layers);
                }
                for (int l = 0; l < layers; l++) {
                    String t = types.get(l).asText();
                    if (t.equals("sliding_attention")) {
                        if (size <= 0) {
                            throw error("layer " + l + " uses sliding_attention but sliding_window is " + size);
                        }
                        window[l] = size;
                    } else if (!t.equals("full_attention")) {
                        throw error("layer_types[" + l + "] '" + t + "' is not supported");
                    }
                }
                return window;
            }
            if (family == Family.QWEN2_MOE && bool("use_sliding_window", false)) {
                // transformers' Qwen2-MoE without layer_types: layers from max_window_layers on slide.
                int from = optionalNonNegative("max_window_layers", layers);
                for (int l = from; l < layers; l++) {
                    window[l] = size;
                }
                return window;
            }
            if (family != Family.QWEN2_MOE && family != Family.OLMOE && size > 0) {
                Arrays.fill(window, size);
            }
            return window;
        }

        /** A list of layer indices, each in [0, limit). */
        private Set<Integer> intSet(String key, int limit) {
            Set<Integer> set = new HashSet<>();
            JsonNode node = root.get(key);
            if (node != null && !node.isNull()) {
                if (!node.isArray()) {
                    throw error(key + " must be a list of layer indices");
                }
                for (JsonNode n : node) {
                    if (!n.isIntegralNumber() || !n.canConvertToInt()) {
                        throw error(key + " must list layer indices, found " + n);
                    }
                    if (n.asInt() < 0 || n.asInt() >= limit) {
                        throw error(key + " lists layer " + n + ", outside [0, " + limit + ")");
                    }
                    set.add(n.asInt());
                }
            }
            return set;
        }

        private String text(String key, String fallback) {
            JsonNode n = root.get(key);
            return n == null || n.isNull() ? fallback : n.asText();
        }

        private int integer(String key) {
            JsonNode n = root.get(key);
            if (n == null || n.isNull()) {
                throw error(key + " is missing");
            }
            if (!n.isIntegralNumber() || !n.canConvertToInt()) {
                throw error(key + " must be an integer, found " + n);
            }
            return n.asInt();
        }

        private int positive(String key) {
            int v = integer(key);
            if (v <= 0) {
                throw error(key + " must be positive, found " + v);
            }
            return v;
        }

        /** A positive integer of at most {@code max}, checked before anything is sized by it. */
        private int bounded(String key, int max) {
            int v = positive(key);
            if (v > max) {
                throw error(key + " " + v + " is more than moescore supports (at most " + max + ")");
            }
            return v;
        }

        private int optionalNonNegative(String key, int fallback) {
            int v = optionalInt(key, fallback);
            if (v < 0) {
                throw error(key + " must be 0 or more, found " + v);
            }
            return v;
        }

        /** A positive number that a float holds finitely (eps, clip limits). */
        private float positiveFloat(String key) {
            double v = number(key);
            float f = (float) v;
            if (!(v > 0) || !Float.isFinite(f) || f == 0) {
                throw error(key + " must be a positive number that a float holds, found " + root.get(key));
            }
            return f;
        }

        private int optionalInt(String key, int fallback) {
            return root.hasNonNull(key) ? integer(key) : fallback;
        }

        private double number(String key) {
            JsonNode n = root.get(key);
            if (n == null || !n.isNumber()) {
                throw error(key + " must be a number, found " + n);
            }
            return n.asDouble();
        }

        private boolean bool(String key, boolean fallback) {
            JsonNode n = root.get(key);
            if (n == null || n.isNull()) {
                return fallback;
            }
            if (!n.isBoolean()) {
                throw error(key + " must be true or false, found " + n);
            }
            return n.asBoolean();
        }

        private ModelFormatException error(String message) {
            return new ModelFormatException(source + ": " + message);
        }
    }
}
