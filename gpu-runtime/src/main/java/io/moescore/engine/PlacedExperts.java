package io.moescore.engine;

import io.moescore.backend.ExpertWeights;

/**
 * One MoE layer's routed experts spread over devices ({@link DeviceGroup}): per device, the experts it holds (layer
 * indices, ascending; numbered 0.. in that order there) and their weights on it, null where it holds none.
 *
 * @param numExperts the layer's experts
 * @param ffnSize    each expert's ffn width
 * @param expertsOn  per device, the experts it holds
 * @param onDevice   per device, their weights there (null: none)
 */
record PlacedExperts(int numExperts, int ffnSize, int[][] expertsOn, ExpertWeights[] onDevice)
        implements ExpertWeights {
    @Override
    public void close() {
        for (ExpertWeights w : onDevice) {
            if (w != null) {
                w.close();
            }
        }
    }
}
