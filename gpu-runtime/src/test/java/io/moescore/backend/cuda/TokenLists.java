package io.moescore.backend.cuda;

import io.moescore.routing.HostExpertRouting;
import java.util.Arrays;

/**
 * A routing per token, as the routers decide it: each token's experts (ascending) and their gates, from the
 * per-expert lists a routing is kept in (host arrays, or a device routing's downloaded ones).
 */
record TokenLists(int[][] experts, float[][] gates) {
    static TokenLists of(HostExpertRouting r, int rows) {
        return of(r.offsets(), r.tokens(), r.gates(), rows);
    }

    /** Expert e owns entries offsets[e] .. offsets[e + 1] - 1 of tokens and gates. */
    static TokenLists of(int[] offsets, int[] tokens, float[] gates, int rows) {
        int[][] e = new int[rows][0];
        float[][] g = new float[rows][0];
        for (int x = 0; x + 1 < offsets.length; x++) {
            for (int i = offsets[x]; i < offsets[x + 1]; i++) {
                int t = tokens[i];
                e[t] = Arrays.copyOf(e[t], e[t].length + 1);
                e[t][e[t].length - 1] = x;
                g[t] = Arrays.copyOf(g[t], g[t].length + 1);
                g[t][g[t].length - 1] = gates[i];
            }
        }
        return new TokenLists(e, g);
    }
}
