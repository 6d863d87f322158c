package io.moescore.routing;

/**
 * Turns router logits into per-expert token lists. Implementations are pure functions of one token's logits,
 * so a token's routing never depends on what it was batched with, except {@link BatchTopKRouter} (MiSTer's
 * batch-level gating, chosen by {@code --routing batch-top-k}). This method is the reference; GPU backends
 * implement the same router in a kernel and are tested against it. A token may get any number of experts, none
 * included ({@link ThresholdRouter}); its MoE output is then zero.
 */
public interface Router {
    /** Routes {@code rows} tokens whose logits are {@code logits[row * numExperts + e]}. */
    HostExpertRouting route(float[] logits, int rows, int numExperts);

    /**
     * As {@link #route(float[], int, int)}, knowing where the batch's sequences start: sequence s owns rows
     * {@code sequenceStarts[s] .. sequenceStarts[s + 1] - 1}. Only routers that look beyond one token
     * ({@link BatchTopKRouter} with a block) use them.
     */
    default HostExpertRouting route(float[] logits, int rows, int numExperts, int[] sequenceStarts) {
        return route(logits, rows, numExperts);
    }
}
