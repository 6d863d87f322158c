package io.moescore.backend.cpu;

import io.moescore.backend.ExpertWeights;

/** Experts as fp32 arrays, one gate/up/down triple per expert (gate and up [ffn, hidden], down [hidden, ffn]). */
record CpuExperts(CpuTensor[] gate, CpuTensor[] up, CpuTensor[] down) implements ExpertWeights {
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
