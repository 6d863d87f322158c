package io.moescore.sparsify;

import io.moescore.engine.RoutedInputs;
import java.util.HashMap;
import java.util.Map;

/**
 * The normed hidden states routed to each expert of one MoE layer during a calibration pass, as rows [tokens, hidden],
 * at most {@code maxTokens} per expert (the first ones seen): what {@link ExpertReconstruction} tunes on. Memory:
 * maxTokens x hidden x 4 bytes per expert (the demo model, all 8 experts at 16384 tokens: 100 MB; a Mixtral-8x7B
 * layer: 2.1 GB).
 */
final class ExpertInputs implements RoutedInputs {
    private final int layer;
    private final int maxTokens;
    private final Map<Integer, float[]> rows = new HashMap<>();
    private final Map<Integer, Integer> counts = new HashMap<>();
    private int hidden;

    ExpertInputs(int layer, int maxTokens) {
        this.layer = layer;
        this.maxTokens = maxTokens;
    }

    @Override
    public void accept(int layer, int expert, float[] x, int[] tokenRows, int hidden, float[] swiglu, int ffn) {
        if (layer != this.layer || tokenRows.length == 0) {
            return;
        }
        this.hidden = hidden;
        int have = counts.getOrDefault(expert, 0);
        int take = Math.min(tokenRows.length, maxTokens - have);
        if (take <= 0) {
            return;
        }
        float[] buffer = rows.get(expert);
        if (buffer == null || buffer.length < (have + take) * hidden) {
            int capacity = Math.min(maxTokens, Math.max(2 * (have + take), 1024));
            buffer = java.util.Arrays.copyOf(buffer == null ? new float[0] : buffer, capacity * hidden);
            rows.put(expert, buffer);
        }
        for (int r = 0; r < take; r++) {
            System.arraycopy(x, tokenRows[r] * hidden, buffer, (have + r) * hidden, hidden);
        }
        counts.put(expert, have + take);
    }

    /** Tokens collected for an expert (0 where none reached it). */
    int tokens(int expert) {
        return counts.getOrDefault(expert, 0);
    }

    /** The expert's rows [tokens(expert), hidden]. */
    float[] rows(int expert) {
        return java.util.Arrays.copyOf(rows.get(expert), tokens(expert) * hidden);
    }

    int hidden() {
        return hidden;
    }
}
