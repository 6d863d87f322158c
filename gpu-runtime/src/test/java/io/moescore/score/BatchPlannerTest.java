package io.moescore.score;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The batch plan every scorer uses: runs of consecutive rows, bounded, every row exactly once, in order. */
class BatchPlannerTest {
    @Test
    void consecutiveRowsBounded() {
        List<int[]> plan = BatchPlanner.plan(new int[] {5, 1, 9, 1, 4, 20, 3}, 10);
        assertEquals(List.of("[0, 1]", "[2, 3]", "[4]", "[5]", "[6]"), plan.stream().map(Arrays::toString).toList(),
                "lengths 5, 1 | 9, 1 | 4 | 20 (alone, above the bound) | 3");
    }

    @Test
    void everyRowOnceAndNoBatchAboveTheBoundUnlessAlone() {
        long seed = System.nanoTime();
        System.out.println("BatchPlannerTest seed " + seed);
        Random random = new Random(seed);
        for (int trial = 0; trial < 200; trial++) {
            int[] lengths = new int[random.nextInt(50)];
            for (int i = 0; i < lengths.length; i++) {
                lengths[i] = random.nextInt(300);
            }
            int bound = 1 + random.nextInt(600);
            List<Integer> seen = new ArrayList<>();
            for (int[] batch : BatchPlanner.plan(lengths, bound)) {
                assertTrue(batch.length > 0, "seed " + seed);
                long tokens = 0;
                for (int row : batch) {
                    seen.add(row);
                    tokens += lengths[row];
                    assertEquals(seen.size() - 1, row, "consecutive, in input order, seed " + seed);
                }
                assertTrue(tokens <= bound || batch.length == 1, "bounded, seed " + seed);
            }
            seen.sort(null);
            int[] all = new int[lengths.length];
            Arrays.setAll(all, i -> i);
            assertArrayEquals(all, seen.stream().mapToInt(Integer::intValue).toArray(), "each row once, seed " + seed);
        }
    }

    @Test
    void aWindowIsFullAtFourBatchesOfTokens() {
        assertFalse(BatchPlanner.windowFull(4 * 100 - 1, 100));
        assertTrue(BatchPlanner.windowFull(4 * 100, 100));
        assertFalse(BatchPlanner.windowFull(4L * Integer.MAX_VALUE - 1, Integer.MAX_VALUE), "no int overflow");
    }
}
