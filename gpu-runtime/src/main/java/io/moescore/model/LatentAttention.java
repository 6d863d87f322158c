package io.moescore.model;

/**
 * DeepSeek's multi-head latent attention (MLA): q through a low-rank pair (q_a_proj, q_a_layernorm, q_b_proj) or a
 * plain q_proj; k and v from one compressed projection (kv_a_proj_with_mqa: kv_lora_rank latent columns and the
 * qk_rope_head_dim columns of a rotary key shared by every head), the latent normed (kv_a_layernorm) and expanded
 * per head by kv_b_proj into qk_nope_head_dim key columns and v_head_dim value columns.
 *
 * @param qLoraRank     q_lora_rank, or 0 where it is null (q_proj)
 * @param kvLoraRank    kv_lora_rank
 * @param qkNopeHeadDim qk_nope_head_dim: the key/query columns without rotary embedding
 * @param qkRopeHeadDim qk_rope_head_dim: the rotary columns, after the nope ones in each query and key head
 * @param vHeadDim      v_head_dim
 */
public record LatentAttention(int qLoraRank, int kvLoraRank, int qkNopeHeadDim, int qkRopeHeadDim, int vHeadDim) {
    /** transformers' DeepseekV3RMSNorm default: q_a_layernorm and kv_a_layernorm do not take rms_norm_eps. */
    public static final float LATENT_NORM_EPS = 1e-6f;

    public LatentAttention {
        if (qLoraRank < 0 || kvLoraRank <= 0 || qkNopeHeadDim < 0 || qkRopeHeadDim <= 0 || vHeadDim <= 0) {
            throw new ModelFormatException("config: MLA sizes must be positive (q_lora_rank " + qLoraRank
                    + ", kv_lora_rank " + kvLoraRank + ", qk_nope_head_dim " + qkNopeHeadDim + ", qk_rope_head_dim "
                    + qkRopeHeadDim + ", v_head_dim " + vHeadDim + ")");
        }
    }

    /** Query and key width per head: qk_nope_head_dim + qk_rope_head_dim. */
    public int qkHeadDim() {
        return qkNopeHeadDim + qkRopeHeadDim;
    }

    public ConfigDim dimQLora() {
        return ConfigDim.of("q_lora_rank", qLoraRank);
    }

    /** Rows of kv_a_proj_with_mqa: kv_lora_rank + qk_rope_head_dim. */
    public ConfigDim dimKvA() {
        return new ConfigDim(kvLoraRank + qkRopeHeadDim, "kv_lora_rank + qk_rope_head_dim");
    }

    public ConfigDim dimKvLora() {
        return ConfigDim.of("kv_lora_rank", kvLoraRank);
    }

    /** Rows of kv_b_proj per head: qk_nope_head_dim + v_head_dim. */
    public ConfigDim dimKvBHead() {
        return new ConfigDim(qkNopeHeadDim + vHeadDim, "(qk_nope_head_dim + v_head_dim)");
    }
}
