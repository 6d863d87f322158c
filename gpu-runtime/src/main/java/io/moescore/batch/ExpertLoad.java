package io.moescore.batch;

/** Tokens routed to each expert of each MoE layer, summed over whatever was scored. Not thread-safe. */
public final class ExpertLoad {
    private final long[][] counts;

    public ExpertLoad(int numLayers, int numExperts) {
        counts = new long[numLayers][numExperts];
    }

    public void add(int layer, int[] tokensPerExpert) {
        for (int e = 0; e < tokensPerExpert.length; e++) {
            counts[layer][e] += tokensPerExpert[e];
        }
    }

    public void add(ExpertLoad other) {
        for (int l = 0; l < counts.length; l++) {
            for (int e = 0; e < counts[l].length; e++) {
                counts[l][e] += other.counts[l][e];
            }
        }
    }

    public int numLayers() {
        return counts.length;
    }

    public long tokens(int layer, int expert) {
        return counts[layer][expert];
    }

    public long[] layer(int layer) {
        return counts[layer].clone();
    }
}
