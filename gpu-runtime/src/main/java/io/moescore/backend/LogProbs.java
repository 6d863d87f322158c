package io.moescore.backend;

/**
 * What the lm_head step returns to the host: per token the log-prob of its target (NaN where it has none),
 * and for selected rows the most likely next tokens, most likely first.
 */
public record LogProbs(float[] targetLogProbs, int[][] topTokens) {
}
