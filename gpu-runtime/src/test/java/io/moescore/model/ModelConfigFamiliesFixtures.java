package io.moescore.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;

/** Shrunk config.json of each issue-24 family, as tests in other packages need them. */
public final class ModelConfigFamiliesFixtures {
    private ModelConfigFamiliesFixtures() {
    }

    /** granite-3.0-1b-a400m's settings, shrunk. */
    public static final String GRANITE = """
            {"model_type": "granitemoe", "vocab_size": 512, "hidden_size": 64, "intermediate_size": 32,
             "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "hidden_act": "silu",
             "max_position_embeddings": 256, "rms_norm_eps": 1e-6, "tie_word_embeddings": true,
             "rope_theta": 10000.0, "rope_scaling": null, "attention_bias": false, "embedding_multiplier": 12.0,
             "logits_scaling": 6.0, "residual_multiplier": 0.22, "attention_multiplier": 0.015625,
             "num_local_experts": 8, "num_experts_per_tok": 2}""";

    /** DeepSeek-V3's config.json shape (transformers 4: rope_theta and rope_scaling at the top), shrunk. */
    public static final String DEEPSEEK = """
            {"model_type": "deepseek_v3", "vocab_size": 512, "hidden_size": 64, "intermediate_size": 96,
             "moe_intermediate_size": 32, "num_hidden_layers": 3, "num_attention_heads": 4,
             "num_key_value_heads": 4, "n_shared_experts": 1, "n_routed_experts": 8, "routed_scaling_factor": 2.5,
             "kv_lora_rank": 32, "q_lora_rank": 24, "qk_rope_head_dim": 8, "v_head_dim": 12,
             "qk_nope_head_dim": 16, "topk_method": "noaux_tc", "scoring_func": "sigmoid", "n_group": 4,
             "topk_group": 2, "num_experts_per_tok": 3, "moe_layer_freq": 1, "first_k_dense_replace": 1,
             "norm_topk_prob": true, "hidden_act": "silu", "max_position_embeddings": 256, "rms_norm_eps": 1e-6,
             "tie_word_embeddings": false, "rope_theta": 10000, "num_nextn_predict_layers": 1,
             "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 4, "mscale": 0.707, "mscale_all_dim": 1.0,
                              "original_max_position_embeddings": 64, "type": "yarn"},
             "attention_bias": false}""";

    /** GLM-4.5's config.json shape, shrunk. */
    public static final String GLM = """
            {"model_type": "glm4_moe", "vocab_size": 512, "hidden_size": 64, "intermediate_size": 96,
             "moe_intermediate_size": 32, "num_hidden_layers": 3, "num_attention_heads": 4,
             "num_key_value_heads": 2, "head_dim": 16, "partial_rotary_factor": 0.5, "n_routed_experts": 8,
             "n_shared_experts": 1, "num_experts_per_tok": 2, "n_group": 2, "topk_group": 1,
             "routed_scaling_factor": 1.5, "norm_topk_prob": true, "first_k_dense_replace": 1,
             "attention_bias": true, "use_qk_norm": true, "hidden_act": "silu", "max_position_embeddings": 256,
             "rms_norm_eps": 1e-5, "rope_theta": 1000000, "rope_scaling": null, "tie_word_embeddings": false,
             "num_nextn_predict_layers": 1}""";

    /** gpt-oss-20b's config.json as released (MXFP4 quantization_config, both top-k names), shrunk. */
    public static final String GPT_OSS = """
            {"architectures": ["GptOssForCausalLM"], "attention_bias": true, "attention_dropout": 0.0,
             "experts_per_token": 4, "head_dim": 16, "hidden_act": "silu", "hidden_size": 64,
             "initial_context_length": 64, "initializer_range": 0.02, "intermediate_size": 64,
             "layer_types": ["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
             "max_position_embeddings": 2048, "model_type": "gpt_oss", "num_attention_heads": 8,
             "num_experts_per_tok": 4, "num_hidden_layers": 4, "num_key_value_heads": 2, "num_local_experts": 8,
             "output_router_logits": false,
             "quantization_config": {"modules_to_not_convert": ["model.layers.*.self_attn", "model.layers.*.mlp.router",
                                     "model.embed_tokens", "lm_head"], "quant_method": "mxfp4"},
             "rms_norm_eps": 1e-05,
             "rope_scaling": {"beta_fast": 32.0, "beta_slow": 1.0, "factor": 32.0,
                              "original_max_position_embeddings": 64, "rope_type": "yarn", "truncate": false},
             "rope_theta": 150000, "router_aux_loss_coef": 0.9, "sliding_window": 16, "swiglu_limit": 7.0,
             "tie_word_embeddings": false, "torch_dtype": "bfloat16", "use_cache": true, "vocab_size": 512}""";

    public static ModelConfig gptOss() {
        return parse(GPT_OSS);
    }

    public static ModelConfig granite() {
        return parse(GRANITE);
    }

    public static ModelConfig deepseek() {
        return parse(DEEPSEEK);
    }

    public static ModelConfig glm() {
        return parse(GLM);
    }

    private static ModelConfig parse(String json) {
        try {
            return ModelConfig.parse(new ObjectMapper().readTree(json), "test");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
