package io.moescore.model;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Every config.json field that changes the math of a forward pass, for the families we support.
 * Parsed in one place ({@link ConfigParser}); a field we would have to ignore to load the model is an error.
 *
 * @param family             the model_type
 * @param headDim            per-head width of q and k (explicit in config or hidden / heads; MLA: nope + rope)
 * @param vHeadDim           per-head width of v and of the attention output (headDim except with MLA)
 * @param denseFfnSize       ffn width of the dense MLP in layers that are not MoE (0 when every layer is MoE)
 * @param expertFfnSize      ffn width of each routed expert
 * @param normalizeTopK      renormalise the top-k router weights to sum to one
 * @param sharedExpertSize   ffn width of the shared expert(s) (0: none)
 * @param sharedExpertGated  the shared expert is gated by sigmoid(x . w_gate) (Qwen2-MoE), else added as is
 * @param groupRouting       DeepSeek-V3's group-limited sigmoid router, or null for softmax top-k
 * @param rope               the rotary embedding
 * @param attentionScale     the softmax scale of q.k (1/sqrt(head_dim); Granite: attention_multiplier; DeepSeek
 *                           with YaRN: times mscale^2)
 * @param multipliers        Granite's embedding, residual and logits scalings (1 elsewhere)
 * @param qkvBias            q, k and v projections carry a bias (MLA: q_a_proj and kv_a_proj_with_mqa)
 * @param outputBias         the output projection carries a bias
 * @param clipQkv            clamp q, k and v to [-clipQkv, clipQkv] (NaN: no clamp)
 * @param latentAttention    DeepSeek's multi-head latent attention, or null for q, k, v projections
 * @param slidingWindow      per layer, the attention window in tokens (0: full causal attention)
 * @param moeLayers          per layer, true where the MLP is a routed MoE block
 * @param attentionSinks     each attention layer has a learned logit per head in its softmax denominator (gpt-oss's
 *                           self_attn.sinks)
 * @param routerBias         the router is a linear layer with a bias (gpt-oss's mlp.router.bias)
 * @param clampedSwiglu      gpt-oss's experts: biases on gate/up and down, interleaved gate_up_proj, the clamped
 *                           SwiGLU; null for plain SwiGLU experts without biases
 */
public record ModelConfig(
        Family family,
        int vocabSize,
        int hiddenSize,
        int numLayers,
        int numHeads,
        int numKvHeads,
        int headDim,
        int vHeadDim,
        int denseFfnSize,
        int expertFfnSize,
        int numExperts,
        int topK,
        boolean normalizeTopK,
        int sharedExpertSize,
        boolean sharedExpertGated,
        GroupRouting groupRouting,
        float rmsNormEps,
        Rope rope,
        double attentionScale,
        Multipliers multipliers,
        int maxPositions,
        boolean tieWordEmbeddings,
        boolean qkvBias,
        boolean outputBias,
        QkNorm qkNorm,
        float clipQkv,
        LatentAttention latentAttention,
        int[] slidingWindow,
        boolean[] moeLayers,
        boolean attentionSinks,
        boolean routerBias,
        ClampedSwiglu clampedSwiglu) {

    public static final String FILE = "config.json";

    /** The supported model_type values. */
    public enum Family {
        MIXTRAL("mixtral"), QWEN2_MOE("qwen2_moe"), QWEN3_MOE("qwen3_moe"), OLMOE("olmoe"), GRANITEMOE("granitemoe"),
        DEEPSEEK_V3("deepseek_v3"), GLM4_MOE("glm4_moe"), GPT_OSS("gpt_oss");

        public final String modelType;

        Family(String modelType) {
            this.modelType = modelType;
        }

        /** Every supported model_type, for error messages. */
        public static String names() {
            return String.join(", ", Arrays.stream(values()).map(f -> f.modelType).toList());
        }
    }

    /**
     * Where q/k RMSNorm applies: nowhere, per head over head_dim (Qwen3, GLM-4.5), or over the whole projection
     * (OLMoE).
     */
    public enum QkNorm { NONE, PER_HEAD, WHOLE_PROJECTION }

    /** More layers than any model has: a config asking for more is refused before anything is sized by it. */
    public static final int MAX_LAYERS = 1024;
    /** More routed experts per layer than any supported model has (the expert load is layers x experts). */
    public static final int MAX_EXPERTS = 16384;

    public ModelConfig {
        require(vocabSize > 0 && hiddenSize > 0 && numLayers > 0 && numHeads > 0 && numKvHeads > 0 && headDim > 0
                && vHeadDim > 0, "sizes must be positive");
        require(numLayers <= MAX_LAYERS, "num_hidden_layers " + numLayers + " is more than the " + MAX_LAYERS
                + " layers moescore supports");
        require(numExperts <= MAX_EXPERTS, "num_experts " + numExperts + " is more than the " + MAX_EXPERTS
                + " routed experts per layer moescore supports");
        require((long) numHeads * Math.max(headDim, vHeadDim) <= Integer.MAX_VALUE, "num_attention_heads x head_dim = "
                + numHeads + " x " + headDim + " = " + (long) numHeads * headDim + " is beyond the largest dimension"
                + " moescore supports (2^31 - 1)");
        require(rmsNormEps > 0 && Float.isFinite(rmsNormEps), "rms_norm_eps must be a positive number, found "
                + rmsNormEps);
        require(Float.isNaN(clipQkv) || clipQkv > 0, "clip_qkv must be a positive number, found " + clipQkv);
        require(denseFfnSize >= 0 && sharedExpertSize >= 0 && expertFfnSize >= 0, "ffn widths must not be negative");
        require(numHeads % numKvHeads == 0, "num_attention_heads " + numHeads
                + " is not a multiple of num_key_value_heads " + numKvHeads);
        require(headDim % 2 == 0, "head_dim " + headDim + " must be even for rotary embeddings");
        require(rope.rotaryDim() <= headDim, "the rotary embedding covers " + rope.rotaryDim()
                + " columns of heads of only " + headDim);
        require(attentionScale > 0 && Double.isFinite(attentionScale), "the attention scale must be a positive "
                + "number, found " + attentionScale);
        require(numExperts > 0 && topK > 0 && topK <= numExperts, "num_experts_per_tok " + topK
                + " must lie in [1, num_experts=" + numExperts + "]");
        if (groupRouting != null) {
            require(numExperts % groupRouting.groups() == 0, "n_routed_experts " + numExperts
                    + " is not a multiple of n_group " + groupRouting.groups());
            require(numExperts / groupRouting.groups() >= 2, "n_group " + groupRouting.groups() + " leaves fewer "
                    + "than 2 experts per group (a group scores by its two best experts)");
            require(topK <= groupRouting.topkGroups() * (numExperts / groupRouting.groups()), "num_experts_per_tok "
                    + topK + " is more than the " + groupRouting.topkGroups() * (numExperts / groupRouting.groups())
                    + " experts of topk_group=" + groupRouting.topkGroups() + " groups");
        }
        if (latentAttention != null) {
            require(numKvHeads == numHeads, "multi-head latent attention needs num_key_value_heads "
                    + numKvHeads + " = num_attention_heads " + numHeads);
            require(headDim == latentAttention.qkHeadDim() && vHeadDim == latentAttention.vHeadDim()
                    && rope.rotaryDim() == latentAttention.qkRopeHeadDim(), "MLA head sizes disagree");
        } else {
            require(vHeadDim == headDim, "v head width " + vHeadDim + " differs from head_dim " + headDim
                    + " without latent attention");
        }
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
        return latentAttention != null ? new ConfigDim(headDim, "(qk_nope_head_dim + qk_rope_head_dim)")
                : ConfigDim.of("head_dim", headDim);
    }

    /** Rows of q_proj: num_attention_heads x head_dim. */
    public ConfigDim dimQ() {
        return ConfigDim.of("num_attention_heads", numHeads).times(dimHead());
    }

    /** Rows of k_proj and v_proj: num_key_value_heads x head_dim. */
    public ConfigDim dimKv() {
        return ConfigDim.of("num_key_value_heads", numKvHeads).times(dimHead());
    }

    /** Columns of o_proj: num_attention_heads x the v head width. */
    public ConfigDim dimAttentionOut() {
        return latentAttention == null ? dimQ()
                : ConfigDim.of("num_attention_heads", numHeads).times(ConfigDim.of("v_head_dim", vHeadDim));
    }

    public ConfigDim dimExperts() {
        return ConfigDim.of(switch (family) {
            case MIXTRAL, GRANITEMOE, GPT_OSS -> "num_local_experts";
            case DEEPSEEK_V3, GLM4_MOE -> "n_routed_experts";
            default -> "num_experts";
        }, numExperts);
    }

    public ConfigDim dimExpertFfn() {
        return ConfigDim.of(switch (family) {
            case MIXTRAL, OLMOE, GRANITEMOE, GPT_OSS -> "intermediate_size";
            default -> "moe_intermediate_size";
        }, expertFfnSize);
    }

    public ConfigDim dimDenseFfn() {
        return ConfigDim.of("intermediate_size", denseFfnSize);
    }

    public ConfigDim dimSharedFfn() {
        return ConfigDim.of(sharedExpertGated ? "shared_expert_intermediate_size"
                : "n_shared_experts x moe_intermediate_size", sharedExpertSize);
    }

    public int qDim() {
        return numHeads * headDim;
    }

    public int kvDim() {
        return numKvHeads * headDim;
    }

    /** Columns of v: num_key_value_heads x the v head width. */
    public int vDim() {
        return numKvHeads * vHeadDim;
    }

    /** Columns of the attention output (o_proj's input): num_attention_heads x the v head width. */
    public int attentionOutDim() {
        return numHeads * vHeadDim;
    }

    public double ropeTheta() {
        return rope.theta();
    }

    /**
     * The weights the engine places, counted from the config: embedding, lm_head unless tied, norms, attention
     * (or latent attention), routers and their correction biases, routed, shared and dense feed-forward weights.
     * Layers beyond num_hidden_layers (DeepSeek's multi-token prediction) are not counted, as they are not loaded.
     */
    public long parameterCount() {
        long h = hiddenSize;
        long n = (long) vocabSize * h * (tieWordEmbeddings ? 1 : 2) + h;
        for (int l = 0; l < numLayers; l++) {
            n += 2 * h + attentionParameters() + (attentionSinks ? numHeads : 0);
            if (moeLayers[l]) {
                n += numExperts * h + (groupRouting != null || routerBias ? numExperts : 0)
                        + (clampedSwiglu != null ? (long) numExperts * (2L * expertFfnSize + h) : 0)
                        + 3 * h * sharedExpertSize
                        + (sharedExpertGated ? h : 0);
            } else {
                n += 3 * h * denseFfnSize;
            }
        }
        return n + routedExpertParameterCount();
    }

    /** The routed experts' weights alone (gate, up and down of every expert of every MoE layer; not biases). */
    public long routedExpertParameterCount() {
        long perLayer = 3L * numExperts * hiddenSize * expertFfnSize;
        long layers = 0;
        for (boolean m : moeLayers) {
            layers += m ? 1 : 0;
        }
        return layers * perLayer;
    }

    /** One layer's attention weights, biases and q/k norms included. */
    private long attentionParameters() {
        long h = hiddenSize;
        long out = (long) attentionOutDim() * h + (outputBias ? h : 0);
        LatentAttention m = latentAttention;
        if (m != null) {
            long q = m.qLoraRank() == 0 ? h * qDim()
                    : h * m.qLoraRank() + m.qLoraRank() + (long) m.qLoraRank() * qDim() + (qkvBias ? m.qLoraRank() : 0);
            long kvA = (long) m.kvLoraRank() + m.qkRopeHeadDim();
            return q + h * kvA + (qkvBias ? kvA : 0) + m.kvLoraRank()
                    + (long) m.kvLoraRank() * numHeads * (m.qkNopeHeadDim() + m.vHeadDim()) + out;
        }
        long norms = switch (qkNorm) {
            case NONE -> 0;
            case PER_HEAD -> 2L * headDim;
            case WHOLE_PROJECTION -> (long) qDim() + kvDim();
        };
        return h * (qDim() + 2L * kvDim()) + (qkvBias ? qDim() + 2L * kvDim() : 0) + norms + out;
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
        return new ConfigParser(root, source).parse();
    }

    private static void require(boolean condition, String message) {
        if (!condition) {
            throw new ModelFormatException("config: " + message);
        }
    }

    @Override
    public String toString() {
        return family.modelType + "(vocab " + vocabSize + ", hidden " + hiddenSize + ", layers " + numLayers
                + ", heads " + numHeads + "/" + numKvHeads + " x " + headDim
                + (vHeadDim != headDim ? " (v " + vHeadDim + ")" : "") + ", experts " + numExperts + " top-" + topK
                + (groupRouting != null ? " of " + groupRouting.topkGroups() + "/" + groupRouting.groups() + " groups"
                        : "")
                + " ffn " + expertFfnSize + (sharedExpertSize > 0 ? ", shared " + sharedExpertSize : "")
                + (latentAttention != null ? ", latent attention" : "")
                + ", moe layers " + Arrays.toString(moeLayers) + ")";
    }
}
