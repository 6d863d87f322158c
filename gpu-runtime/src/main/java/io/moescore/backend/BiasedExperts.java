package io.moescore.backend;

import io.moescore.model.ClampedSwiglu;

/**
 * gpt-oss's experts in fp32 on the host, already in the engine's layout (gate and up [ffn, hidden], down
 * [hidden, ffn] per expert, row-major) with their biases and activation:
 * y = down (act(gate x + gateBias, up x + upBias)) + downBias, act the {@link ClampedSwiglu}.
 */
public record BiasedExperts(int hidden, int ffn, float[][] gate, float[][] up, float[][] down,
                            float[][] gateBias, float[][] upBias, float[][] downBias, ClampedSwiglu activation) {
    public BiasedExperts {
        int n = gate.length;
        if (n == 0 || up.length != n || down.length != n || gateBias.length != n || upBias.length != n
                || downBias.length != n || activation == null) {
            throw new IllegalArgumentException("biased experts: unequal expert counts or no activation");
        }
        for (int e = 0; e < n; e++) {
            if (gate[e].length != ffn * hidden || up[e].length != ffn * hidden || down[e].length != ffn * hidden
                    || gateBias[e].length != ffn || upBias[e].length != ffn || downBias[e].length != hidden) {
                throw new IllegalArgumentException("biased expert " + e + ": sizes disagree with hidden " + hidden
                        + ", ffn " + ffn);
            }
        }
    }

    public int numExperts() {
        return gate.length;
    }
}
