package io.moescore.model;

/**
 * gpt-oss's expert activation (transformers' GptOssExperts), on gate and up that already carry their biases:
 * <pre>
 *   gate = min(gate, limit)                 (clamp(max=limit): no lower bound)
 *   up   = clamp(up, -limit, limit)
 *   glu  = gate * sigmoid(alpha * gate)
 *   out  = (up + 1) * glu                   (then down_proj + down bias)
 * </pre>
 *
 * @param alpha the sigmoid's slope: 1.702 in transformers (a constant there, not a config field)
 * @param limit swiglu_limit (7.0 in the released models and transformers' default)
 */
public record ClampedSwiglu(float alpha, float limit) {
    /** transformers' GptOssExperts.alpha. */
    public static final float GPT_OSS_ALPHA = 1.702f;

    public ClampedSwiglu {
        if (!(alpha > 0) || !Float.isFinite(alpha) || !(limit > 0) || !Float.isFinite(limit)) {
            throw new ModelFormatException("config: swiglu_limit must be a positive number, found " + limit
                    + " (alpha " + alpha + ")");
        }
    }

    /** The activation of one gate/up pair, in fp32 as the CPU backend computes it. */
    public float apply(float gate, float up) {
        float g = Math.min(gate, limit);
        float u = Math.max(-limit, Math.min(up, limit));
        float glu = g / (1f + (float) Math.exp(-alpha * g));
        return (u + 1f) * glu;
    }
}
