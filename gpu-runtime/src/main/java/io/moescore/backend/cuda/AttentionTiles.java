package io.moescore.backend.cuda;

import java.util.Arrays;
import java.util.Comparator;

/**
 * The query tiles of an attention launch over packed sequences: per block, (sequence start, sequence end, first
 * query row) in absolute rows, every sequence cut into tiles of {@code rows} query rows. Ordered longest first:
 * a causal tile's work is its key count (its last row's position, or the window), and blocks start in list order,
 * so the long tiles start first and the short ones fill the last wave instead of a long one running alone.
 * Built once per forward for each (rows, window): {@link CudaTensor.Ints#derived} keeps it with the sequence
 * offsets every layer receives.
 */
final class AttentionTiles {
    private AttentionTiles() {
    }

    /** The flattened triples for {@code offsets} (sequence s: rows offsets[s] .. offsets[s+1]-1). */
    static int[] build(int[] offsets, int rows, int window) {
        int count = 0;
        for (int s = 0; s + 1 < offsets.length; s++) {
            count += (offsets[s + 1] - offsets[s] + rows - 1) / rows;
        }
        int[][] tiles = new int[count][];
        int n = 0;
        for (int s = 0; s + 1 < offsets.length; s++) {
            for (int q0 = offsets[s]; q0 < offsets[s + 1]; q0 += rows) {
                int last = Math.min(q0 + rows, offsets[s + 1]) - 1;
                int firstKey = window > 0 ? Math.max(offsets[s], q0 - window + 1) : offsets[s];
                tiles[n++] = new int[] {offsets[s], offsets[s + 1], q0, last - firstKey + 1};
            }
        }
        Arrays.sort(tiles, Comparator.comparingInt((int[] t) -> -t[3]));  // stable: equal tiles keep their order
        int[] flat = new int[3 * count];
        for (int i = 0; i < count; i++) {
            System.arraycopy(tiles[i], 0, flat, 3 * i, 3);
        }
        return flat;
    }
}
