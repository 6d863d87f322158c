package io.moescore.backend.cpu;

import io.moescore.backend.ExpertWeights;
import io.moescore.model.ClampedSwiglu;

/**
 * Experts as fp32 arrays, one gate/up/down triple per expert (gate and up [ffn, hidden], down [hidden, ffn]); for
 * gpt-oss also their biases (gate and up [1, ffn], down [1, hidden]) and the clamped SwiGLU, else those are null.
 */
record CpuExperts(CpuTensor[] gate, CpuTensor[] up, CpuTensor[] down, float[][] gateBias, float[][] upBias,
                  float[][] downBias, ClampedSwiglu clamped) implements ExpertWeights {
    CpuExperts(CpuTensor[] gate, CpuTensor[] up, CpuTensor[] down) {
        this(gate, up, down, null, null, null, null);
    }

    @Override
    public int numExperts() {
        return gate.length;
    }

    @Override
    public int ffnSize() {
        return gate[0].rows;
    }

    @Override
    public void close() {
    }
}
