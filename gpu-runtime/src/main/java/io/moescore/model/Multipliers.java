package io.moescore.model;

/**
 * Granite's constant scalings of the residual stream (1 everywhere else): x = embed(tokens) x embedding_multiplier;
 * each block adds residual_multiplier x its output; logits = lm_head(x) / logits_scaling. (attention_multiplier is
 * the softmax scale: {@link ModelConfig#attentionScale()}.)
 */
public record Multipliers(float embedding, float residual, float logitsDivisor) {
    public static final Multipliers NONE = new Multipliers(1f, 1f, 1f);

    public Multipliers {
        check("embedding_multiplier", embedding);
        check("residual_multiplier", residual);
        check("logits_scaling", logitsDivisor);
    }

    private static void check(String field, float value) {
        if (!Float.isFinite(value) || value == 0) {
            throw new ModelFormatException("config: " + field + " must be a finite non-zero number, found " + value);
        }
    }
}
