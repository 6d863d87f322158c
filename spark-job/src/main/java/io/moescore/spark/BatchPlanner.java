package io.moescore.spark;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Groups rows into batches of at most {@code batchTokens} tokens, shortest first, so sequences of similar
 * length run together (less imbalance in attention on the GPU). A row longer than the bound gets a batch of
 * its own. The caller restores input order when it emits results.
 */
final class BatchPlanner {
    private BatchPlanner() {
    }

    static List<int[]> plan(int[] lengths, int batchTokens) {
        Integer[] order = new Integer[lengths.length];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> lengths[a] != lengths[b] ? Integer.compare(lengths[a], lengths[b]) : Integer.compare(a, b));
        List<int[]> batches = new ArrayList<>();
        List<Integer> current = new ArrayList<>();
        long tokens = 0;
        for (int row : order) {
            if (!current.isEmpty() && tokens + lengths[row] > batchTokens) {
                batches.add(current.stream().mapToInt(Integer::intValue).toArray());
                current.clear();
                tokens = 0;
            }
            current.add(row);
            tokens += lengths[row];
        }
        if (!current.isEmpty()) {
            batches.add(current.stream().mapToInt(Integer::intValue).toArray());
        }
        return batches;
    }
}
