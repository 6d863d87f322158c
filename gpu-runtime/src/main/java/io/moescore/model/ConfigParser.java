package io.moescore.model;

import com.fasterxml.jackson.databind.JsonNode;
import io.moescore.model.ModelConfig.Family;
import io.moescore.model.ModelConfig.QkNorm;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;

/**
 * Reads a config.json tree into a {@link ModelConfig}: each family's fields by the names transformers writes, every
 * field that changes the math either parsed or refused by name, and defaults where transformers' config class has
 * one. Errors name the source and the field.
 */
final class ConfigParser {
    private final JsonNode root;
    private final String source;

    /** The fields of the config being built, at their defaults until a family sets them. */
    private Family family;
    private int hidden;
    private int layers;
    private int heads;
    private int kvHeads;
    private int headDim;
    private int vHeadDim;
    private int experts;
    private int topK;
    private boolean[] moe;
    private int denseFfn;
    private int expertFfn;
    private int shared;
    private boolean sharedGated;
    private boolean normTopK;
    private GroupRouting groupRouting;
    private boolean qkvBias;
    private boolean outBias;
    private QkNorm qkNorm = QkNorm.NONE;
    private float clip = Float.NaN;
    private double partialRotary = 1.0;
    private boolean interleavedRope;
    private Double attentionScale;
    private Multipliers multipliers = Multipliers.NONE;
    private LatentAttention latent;
    private boolean sinks;
    private boolean routerBias;
    private ClampedSwiglu clampedSwiglu;

    ConfigParser(JsonNode root, String source) {
        this.root = root;
        this.source = source;
    }

    ModelConfig parse() {
        try {
            return parseFields();
        } catch (ModelFormatException e) {
            // the records' own checks (ModelConfig, Rope, LatentAttention, ...) say "config: ..."; name the source
            if (e.getMessage().startsWith("config: ")) {
                throw error(e.getMessage().substring("config: ".length()));
            }
            throw e;
        }
    }

    private ModelConfig parseFields() {
        String modelType = text("model_type", null);
        family = Arrays.stream(Family.values()).filter(f -> f.modelType.equals(modelType)).findFirst().orElse(null);
        if (family == null) {
            throw error("model_type " + (modelType == null ? "is missing" : "'" + modelType + "' is not supported")
                    + " (supported: " + Family.names() + ")");
        }
        String act = text("hidden_act", "silu");
        if (!act.equals("silu")) {
            throw error("hidden_act '" + act + "' is not supported (only silu: SwiGLU experts)");
        }
        JsonNode quantization = root.get("quantization_config");
        if (quantization != null && !quantization.isNull() && !(family == Family.GPT_OSS
                && quantization.path("quant_method").asText("").equals("mxfp4"))) {
            throw error("quantization_config (" + quantization.path("quant_method").asText("unknown method")
                    + ") is not supported: moescore reads bf16, fp16 and fp32 checkpoints");
        }
        hidden = positive("hidden_size");
        layers = bounded("num_hidden_layers", ModelConfig.MAX_LAYERS);
        heads = positive("num_attention_heads");
        kvHeads = root.hasNonNull("num_key_value_heads") ? positive("num_key_value_heads") : heads;
        moe = new boolean[layers];
        switch (family) {
            case MIXTRAL -> mixtral();
            case OLMOE -> olmoe();
            case QWEN2_MOE, QWEN3_MOE -> qwen();
            case GRANITEMOE -> granite();
            case DEEPSEEK_V3 -> deepseek();
            case GLM4_MOE -> glm();
            case GPT_OSS -> gptOss();
            default -> throw new IllegalStateException(family.toString());
        }
        if (vHeadDim == 0) {
            vHeadDim = headDim;
        }
        Rope rope = rope();
        if (family == Family.DEEPSEEK_V3) {
            attentionScale = deepseekAttentionScale(rope);
        }
        int[] window = slidingWindows();
        return new ModelConfig(family, positive("vocab_size"), hidden, layers, heads, kvHeads, headDim, vHeadDim,
                denseFfn, expertFfn, experts, topK, normTopK, shared, sharedGated, groupRouting,
                root.hasNonNull("rms_norm_eps") ? positiveFloat("rms_norm_eps")
                        : family == Family.GPT_OSS ? 1e-5f : 1e-6f, rope,
                attentionScale != null ? attentionScale : 1.0 / Math.sqrt(headDim), multipliers,
                optionalInt("max_position_embeddings", 4096), bool("tie_word_embeddings", false),
                qkvBias, outBias, qkNorm, clip, latent, window, moe, sinks, routerBias, clampedSwiglu);
    }

    // ---- families ------------------------------------------------------------------------------------------

    /** Heads, experts and top-k as most families name them; with {@code everyLayerFfn}, every layer MoE of it. */
    private void headsAndExperts(String everyLayerFfn) {
        headDim = headDim();
        experts = expertCount();
        topK = positive("num_experts_per_tok");
        if (everyLayerFfn != null) {
            expertFfn = integer(everyLayerFfn);
            Arrays.fill(moe, true);
        }
    }

    private void mixtral() {
        headsAndExperts("intermediate_size");
        normTopK = true;
    }

    private void olmoe() {
        headsAndExperts("intermediate_size");
        normTopK = bool("norm_topk_prob", false);
        qkvBias = outBias = bool("attention_bias", false);
        qkNorm = QkNorm.WHOLE_PROJECTION;
        if (root.hasNonNull("clip_qkv")) {
            clip = positiveFloat("clip_qkv");
        }
    }

    private void qwen() {
        headsAndExperts(null);
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
            sharedGated = true;
        } else {
            normTopK = bool("norm_topk_prob", true);
            qkvBias = outBias = bool("attention_bias", false);
            qkNorm = QkNorm.PER_HEAD;
        }
    }

    /**
     * Granite MoE (transformers' modeling_granitemoe): Llama attention with attention_multiplier as the softmax
     * scale, a softmax over the top-k router logits (the same weights as softmax then renormalised top-k), and the
     * embedding, residual and logits multipliers.
     */
    private void granite() {
        headsAndExperts("intermediate_size");
        normTopK = true;
        qkvBias = outBias = bool("attention_bias", false);
        attentionScale = (double) finiteFloat("attention_multiplier", 1f);
        multipliers = new Multipliers(finiteFloat("embedding_multiplier", 1f),
                finiteFloat("residual_multiplier", 1f), finiteFloat("logits_scaling", 1f));
    }

    /**
     * DeepSeek-V3 / R1 / Kimi-K2: multi-head latent attention, the group-limited sigmoid router with shared experts,
     * the first first_k_dense_replace layers dense, interleaved rotary pairs by default (rope_interleave), and with
     * YaRN a softmax scale of qk_head_dim^-0.5 x mscale(factor, mscale_all_dim)^2.
     */
    private void deepseek() {
        JsonNode qLora = root.get("q_lora_rank");
        if (qLora == null) {
            throw error("q_lora_rank is missing (null selects a plain q_proj)");
        }
        latent = new LatentAttention(qLora.isNull() ? 0 : positive("q_lora_rank"), positive("kv_lora_rank"),
                nonNegative("qk_nope_head_dim"), positive("qk_rope_head_dim"), positive("v_head_dim"));
        if (kvHeads != heads) {
            throw error("num_key_value_heads " + kvHeads + " must equal num_attention_heads " + heads
                    + ": latent attention expands k and v for every head");
        }
        // config.json's head_dim is transformers' rotary width (qk_rope_head_dim), not a head size of its own
        if (root.hasNonNull("head_dim") && integer("head_dim") != latent.qkRopeHeadDim()) {
            throw error("head_dim " + integer("head_dim") + " disagrees with qk_rope_head_dim "
                    + latent.qkRopeHeadDim());
        }
        headDim = latent.qkHeadDim();
        vHeadDim = latent.vHeadDim();
        interleavedRope = bool("rope_interleave", true);
        requireText("topk_method", "noaux_tc");
        requireText("scoring_func", "sigmoid");
        if (root.hasNonNull("moe_layer_freq") && integer("moe_layer_freq") != 1) {
            throw error("moe_layer_freq " + integer("moe_layer_freq") + " is not supported (only 1: every layer "
                    + "from first_k_dense_replace on is MoE, as transformers reads it)");
        }
        groupLimitedMoe();
    }

    /** DeepSeek's softmax scale: qk_head_dim^-0.5, with YaRN times mscale(factor, mscale_all_dim)^2. */
    private double deepseekAttentionScale(Rope rope) {
        double scale = Math.pow(headDim, -0.5);
        double mscaleAllDim = optionalNumber(yarnNode(), "mscale_all_dim", 0);
        if (rope.yarn() != null && mscaleAllDim != 0) {
            double m = Rope.Yarn.mscale(rope.yarn().factor(), mscaleAllDim);
            scale = scale * m * m;
        }
        return scale;
    }

    /** GLM-4.5 (glm4_moe): the DeepSeek-V3 router, q/k/v biases, optional per-head q/k norm, partial rotary. */
    private void glm() {
        headDim = headDim();
        groupLimitedMoe();
        qkvBias = bool("attention_bias", false);
        qkNorm = bool("use_qk_norm", false) ? QkNorm.PER_HEAD : QkNorm.NONE;
        partialRotary = partialRotaryFactor(0.5);
    }

    /**
     * gpt-oss (transformers' GptOssConfig / modeling_gpt_oss): every layer MoE with num_local_experts experts of
     * intermediate_size, top num_experts_per_tok (or experts_per_token, the original checkpoints' name) by the
     * router's biased logits, softmax over the chosen logits (= renormalised softmax top-k); q/k/v/o biases
     * (attention_bias, true in every released model); per-head sinks; sliding_window on the layers layer_types
     * names (alternating sliding / full from layer 0 when it is absent, as GptOssConfig fills it); YaRN rope; the
     * clamped SwiGLU with swiglu_limit (alpha 1.702 is a constant in transformers). MXFP4 experts are dequantized on
     * load (quantization_config {"quant_method": "mxfp4"} is accepted, only for this family).
     * router_aux_loss_coef and output_router_logits only matter for training: ignored.
     */
    private void gptOss() {
        headDim = headDim();
        experts = expertCount();
        if (root.hasNonNull("num_experts_per_tok") && root.hasNonNull("experts_per_token")
                && integer("num_experts_per_tok") != integer("experts_per_token")) {
            throw error("num_experts_per_tok " + integer("num_experts_per_tok") + " disagrees with experts_per_token "
                    + integer("experts_per_token"));
        }
        topK = positive(root.hasNonNull("num_experts_per_tok") ? "num_experts_per_tok" : "experts_per_token");
        expertFfn = positive("intermediate_size");
        Arrays.fill(moe, true);
        normTopK = true;
        qkvBias = outBias = bool("attention_bias", true);
        sinks = true;
        routerBias = true;
        double limit = root.hasNonNull("swiglu_limit") ? positiveFloat("swiglu_limit") : 7.0;
        clampedSwiglu = new ClampedSwiglu(ClampedSwiglu.GPT_OSS_ALPHA, (float) limit);
        if (!root.has("rope_scaling") && !root.has("rope_parameters")) {
            // GptOssConfig fills in YaRN (factor 32) when the field is absent: guessing it here would be silent
            throw error("neither rope_scaling nor rope_parameters is given: GptOssConfig's default is YaRN with "
                    + "factor 32; write it (or null for plain rotary embeddings) in config.json");
        }
    }

    /** The MoE fields DeepSeek-V3 and GLM-4.5 share: routed and shared experts, groups, dense first layers. */
    private void groupLimitedMoe() {
        experts = root.hasNonNull("n_routed_experts") ? bounded("n_routed_experts", ModelConfig.MAX_EXPERTS)
                : expertCount();
        topK = positive("num_experts_per_tok");
        expertFfn = positive("moe_intermediate_size");
        int firstMoe = nonNegative("first_k_dense_replace");
        if (firstMoe > layers) {
            throw error("first_k_dense_replace " + firstMoe + " is more than num_hidden_layers " + layers);
        }
        for (int l = firstMoe; l < layers; l++) {
            moe[l] = true;
        }
        denseFfn = firstMoe > 0 ? positive("intermediate_size") : optionalNonNegative("intermediate_size", 0);
        int sharedExperts = nonNegative("n_shared_experts");
        shared = Math.multiplyExact(sharedExperts, expertFfn);
        normTopK = bool("norm_topk_prob", true);
        groupRouting = new GroupRouting(positive("n_group"), positive("topk_group"),
                positiveFloat("routed_scaling_factor"));
    }

    // ---- shared parts --------------------------------------------------------------------------------------

    private int headDim() {
        if (root.hasNonNull("head_dim")) {
            return positive("head_dim");
        }
        if (hidden % heads != 0) {
            throw error("hidden_size " + hidden + " is not a multiple of num_attention_heads " + heads
                    + " and head_dim is not given");
        }
        return hidden / heads;
    }

    /** transformers renamed num_local_experts <-> num_experts between families and versions: take either. */
    private int expertCount() {
        return root.hasNonNull("num_local_experts") ? bounded("num_local_experts", ModelConfig.MAX_EXPERTS)
                : bounded("num_experts", ModelConfig.MAX_EXPERTS);
    }

    /**
     * The rotary embedding: rope_theta (top level in transformers 4, in rope_parameters in 5), the rotated share of
     * each head, and a scaling: none, or YaRN where the family's transformers code applies it. Any other scaling
     * would silently change every score, so it is refused.
     */
    private Rope rope() {
        if (family != Family.GLM4_MOE) {
            double partial = partialRotaryFactor(1.0);
            if (partial != 1.0) {
                throw error(partialRotarySource() + " " + partial + " is not supported for " + family.modelType);
            }
        }
        // transformers: int(head_dim * partial_rotary_factor); MLA rotates its qk_rope_head_dim columns
        int rotaryDim = latent != null ? latent.qkRopeHeadDim() : (int) (headDim * partialRotary);
        return new Rope(ropeTheta(), rotaryDim, interleavedRope, yarn());
    }

    /** The rope_scaling or rope_parameters object that asks for a scaling, or null for plain rotary embeddings. */
    private JsonNode yarnNode() {
        JsonNode found = null;
        for (String key : new String[] {"rope_scaling", "rope_parameters"}) {
            JsonNode node = root.get(key);
            if (node == null || node.isNull() || !node.isObject()) {
                continue;
            }
            String type = ropeType(node);
            if (type == null || type.equals("default")) {
                continue;
            }
            if (!type.equals("yarn") || (family != Family.DEEPSEEK_V3 && family != Family.GLM4_MOE
                    && family != Family.GPT_OSS)) {
                throw error(key + " asks for rope type '" + type + "', which is not implemented for "
                        + family.modelType + " (only 'default' rotary embeddings are"
                        + (type.equals("yarn") ? "; yarn is, for deepseek_v3, glm4_moe and gpt_oss" : "") + ")");
            }
            found = found == null || key.equals("rope_parameters") ? node : found;
        }
        return found;
    }

    private static String ropeType(JsonNode node) {
        JsonNode type = node.has("rope_type") ? node.get("rope_type") : node.get("type");
        return type == null || type.isNull() ? null : type.asText();
    }

    /** YaRN as transformers' _compute_yarn_parameters reads its fields; or null. */
    private Rope.Yarn yarn() {
        JsonNode node = yarnNode();
        if (node == null) {
            return null;
        }
        int maxPositions = optionalInt("max_position_embeddings", 4096);
        int original = node.hasNonNull("original_max_position_embeddings")
                ? fieldInt(node, "original_max_position_embeddings") : maxPositions;
        double factor = node.hasNonNull("factor") ? optionalNumber(node, "factor", 0)
                : (double) maxPositions / original;
        double mscale = optionalNumber(node, "mscale", 0);
        double mscaleAllDim = optionalNumber(node, "mscale_all_dim", 0);
        double attentionFactor;
        if (node.hasNonNull("attention_factor")) {
            attentionFactor = optionalNumber(node, "attention_factor", 0);
        } else if (mscale != 0 && mscaleAllDim != 0) {
            attentionFactor = Rope.Yarn.mscale(factor, mscale) / Rope.Yarn.mscale(factor, mscaleAllDim);
        } else {
            attentionFactor = Rope.Yarn.mscale(factor, 1);
        }
        // "or 32" / "or 1" in transformers: a missing, null or zero beta takes the paper's default
        double betaFast = optionalNumber(node, "beta_fast", 0);
        double betaSlow = optionalNumber(node, "beta_slow", 0);
        JsonNode truncate = node.get("truncate");
        if (truncate != null && !truncate.isNull() && !truncate.isBoolean()) {
            throw error("rope_scaling.truncate must be true or false, found " + truncate);
        }
        return new Rope.Yarn(factor, original, betaFast == 0 ? 32 : betaFast, betaSlow == 0 ? 1 : betaSlow,
                attentionFactor, truncate == null || truncate.isNull() || truncate.asBoolean());
    }

    /** partial_rotary_factor at the top level or in rope_scaling / rope_parameters; they must agree. */
    private double partialRotaryFactor(double fallback) {
        Double found = null;
        for (JsonNode node : new JsonNode[] {root, root.get("rope_scaling"), root.get("rope_parameters")}) {
            if (node == null || !node.isObject() || !node.hasNonNull("partial_rotary_factor")) {
                continue;
            }
            double v = optionalNumber(node, "partial_rotary_factor", 0);
            if (!(v > 0 && v <= 1)) {
                throw error(partialRotarySource() + " " + v + " must lie in (0, 1]");
            }
            if (found != null && found != v) {
                throw error("partial_rotary_factor is given twice, as " + found + " and " + v);
            }
            found = v;
        }
        return found == null ? fallback : found;
    }

    /** Where partial_rotary_factor was found, for messages. */
    private String partialRotarySource() {
        for (String key : new String[] {"rope_scaling", "rope_parameters"}) {
            JsonNode node = root.get(key);
            if (node != null && node.isObject() && node.hasNonNull("partial_rotary_factor")) {
                return key + ".partial_rotary_factor";
            }
        }
        return "partial_rotary_factor";
    }

    /** rope_theta at the top level (transformers 4) or inside rope_parameters (transformers 5). */
    private double ropeTheta() {
        JsonNode params = root.get("rope_parameters");
        JsonNode theta = params != null && params.isObject() && params.hasNonNull("rope_theta")
                ? params.get("rope_theta") : root.get("rope_theta");
        if (theta == null || theta.isNull()) {
            return family == Family.GPT_OSS ? 150000.0 : 10000.0;  // GptOssConfig's default
        }
        if (!theta.isNumber() || !(theta.asDouble() > 0) || Double.isInfinite(theta.asDouble())) {
            throw error("rope_theta must be a positive number, found " + theta);
        }
        return theta.asDouble();
    }

    private int[] slidingWindows() {
        int[] window = new int[layers];
        int size = optionalNonNegative("sliding_window", family == Family.GPT_OSS ? 128 : 0);
        boolean slides = family == Family.MIXTRAL || family == Family.QWEN2_MOE || family == Family.QWEN3_MOE
                || family == Family.OLMOE || family == Family.GPT_OSS;
        JsonNode types = root.get("layer_types");
        if (types != null && types.isArray()) {
            if (types.size() != layers) {
                throw error("layer_types lists " + types.size() + " layers but num_hidden_layers is " + layers);
            }
            for (int l = 0; l < layers; l++) {
                String t = types.get(l).asText();
                if (t.equals("sliding_attention") && slides) {
                    if (size <= 0) {
                        throw error("layer " + l + " uses sliding_attention but sliding_window is " + size);
                    }
                    window[l] = size;
                } else if (!t.equals("full_attention")) {
                    throw error("layer_types[" + l + "] '" + t + "' is not supported for " + family.modelType);
                }
            }
            return window;
        }
        if (family == Family.GPT_OSS && size > 0) {
            // GptOssConfig without layer_types: sliding_attention where (i + 1) % 2 is 1, i.e. layers 0, 2, 4, ...
            for (int l = 0; l < layers; l += 2) {
                window[l] = size;
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
        // Mixtral and Qwen3-MoE slide every layer by sliding_window; OLMoE, Granite, DeepSeek-V3 and GLM-4.5 never
        // read it (transformers ignores the field there)
        if ((family == Family.MIXTRAL || family == Family.QWEN3_MOE) && size > 0) {
            Arrays.fill(window, size);
        }
        return window;
    }

    // ---- field readers -------------------------------------------------------------------------------------

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

    /** A text field that, when present, must have the one value implemented. */
    private void requireText(String key, String only) {
        String v = text(key, only);
        if (!v.equals(only)) {
            throw error(key + " '" + v + "' is not supported for " + family.modelType + " (only '" + only + "')");
        }
    }

    private String text(String key, String fallback) {
        JsonNode n = root.get(key);
        return n == null || n.isNull() ? fallback : n.asText();
    }

    private int integer(String key) {
        return fieldInt(root, key);
    }

    private int fieldInt(JsonNode node, String key) {
        JsonNode n = node.get(key);
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

    private int nonNegative(String key) {
        int v = integer(key);
        if (v < 0) {
            throw error(key + " must be 0 or more, found " + v);
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

    /** A finite, non-zero number a float holds, or {@code fallback} where the field is missing or null. */
    private float finiteFloat(String key, float fallback) {
        if (!root.hasNonNull(key)) {
            return fallback;
        }
        double v = number(key);
        float f = (float) v;
        if (!Float.isFinite(f) || f == 0) {
            throw error(key + " must be a finite non-zero number that a float holds, found " + root.get(key));
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

    /** A finite number of {@code node}, or {@code fallback} where it is missing or null. */
    private double optionalNumber(JsonNode node, String key, double fallback) {
        if (node == null || !node.hasNonNull(key)) {
            return fallback;
        }
        JsonNode n = node.get(key);
        if (!n.isNumber() || !Double.isFinite(n.asDouble())) {
            throw error((node == root ? "" : "rope scaling ") + key + " must be a finite number, found " + n);
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
