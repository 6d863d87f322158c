package io.moescore.routing;

import io.moescore.batch.TokenRouting;

/**
 * {@link ExpertRouting} in host arrays, as compressed rows: expert e owns entries
 * {@code offsets[e] .. offsets[e+1]-1} of {@code tokens} (row indices, increasing) and {@code gates}.
 * A token may appear under any number of experts (top-k gives k; threshold gates give a variable count).
 */
public record HostExpertRouting(int[] offsets, int[] tokens, float[] gates) implements ExpertRouting {
    public HostExpertRouting {
        if (offsets.length < 2 || offsets[0] != 0 || offsets[offsets.length - 1] != tokens.length
                || tokens.length != gates.length) {
            throw new IllegalArgumentException("inconsistent expert routing arrays");
        }
    }

    @Override
    public int numExperts() {
        return offsets.length - 1;
    }

    @Override
    public int[] tokensPerExpert() {
        int[] counts = new int[numExperts()];
        for (int e = 0; e < counts.length; e++) {
            counts[e] = offsets[e + 1] - offsets[e];
        }
        return counts;
    }

    @Override
    public HostExpertRouting toHost() {
        return this;
    }

    /** Each of rows {@code 0 .. rows-1}'s chosen experts (ascending) and gates: these lists inverted. */
    public TokenRouting.Choices choices(int rows) {
        int[] perRow = new int[rows + 1];
        for (int t : tokens) {
            perRow[t + 1]++;
        }
        for (int t = 0; t < rows; t++) {
            perRow[t + 1] += perRow[t];
        }
        int[] fill = perRow.clone();
        int[] experts = new int[tokens.length];
        float[] weights = new float[tokens.length];
        for (int e = 0; e < numExperts(); e++) {  // experts ascending: each row's list comes out ascending
            for (int i = offsets[e]; i < offsets[e + 1]; i++) {
                int slot = fill[tokens[i]]++;
                experts[slot] = e;
                weights[slot] = gates[i];
            }
        }
        return new TokenRouting.Choices(perRow, experts, weights);
    }

    /** Builds the per-expert lists from each token's chosen experts and gates ({@code [rows][k]}, any k per row). */
    public static HostExpertRouting fromChoices(int numExperts, int[][] experts, float[][] gates) {
        int[] offsets = new int[numExperts + 1];
        for (int t = 0; t < experts.length; t++) {
            for (int e : experts[t]) {
                if (e < 0 || e >= numExperts) {
                    throw new IllegalArgumentException("row " + t + " is routed to expert " + e + ", outside [0, "
                            + numExperts + ")");
                }
                offsets[e + 1]++;
            }
        }
        for (int e = 0; e < numExperts; e++) {
            offsets[e + 1] += offsets[e];
        }
        int[] fill = offsets.clone();
        int[] tokens = new int[offsets[numExperts]];
        float[] weights = new float[tokens.length];
        for (int t = 0; t < experts.length; t++) {
            for (int j = 0; j < experts[t].length; j++) {
                int slot = fill[experts[t][j]]++;
                tokens[slot] = t;
                weights[slot] = gates[t][j];
            }
        }
        return new HostExpertRouting(offsets, tokens, weights);
    }

    @Override
    public void close() {
        // host arrays: nothing to release
    }
}
