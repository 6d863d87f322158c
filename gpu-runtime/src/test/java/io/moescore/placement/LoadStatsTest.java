package io.moescore.placement;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Max/mean, Gini and drift at their extremes and on a series whose load moves from one expert to another. */
class LoadStatsTest {
    @Test
    void extremes() {
        assertEquals(1, LoadStats.maxOverMean(new double[] {3, 3, 3, 3}), 1e-12);
        assertEquals(4, LoadStats.maxOverMean(new double[] {0, 0, 8, 0}), 1e-12);
        assertEquals(0, LoadStats.gini(new double[] {3, 3, 3, 3}), 1e-12);
        assertEquals(0.75, LoadStats.gini(new double[] {0, 0, 8, 0}), 1e-12, "(E - 1) / E");
        assertEquals(0, LoadStats.drift(new double[] {1, 2, 3}, new double[] {2, 4, 6}), 1e-12, "same shares");
        assertEquals(1, LoadStats.drift(new double[] {1, 0}, new double[] {0, 5}), 1e-12, "disjoint");
        assertTrue(Double.isNaN(LoadStats.maxOverMean(new double[] {0, 0})));
    }

    @Test
    void windowsOfASeries() {
        // 4 steps of 2 experts: the load moves from expert 0 to expert 1 after two steps
        LoadSeries s = new LoadSeries(7, new long[] {1, 2, 3, 4},
                new long[][] {{10, 0}, {10, 0}, {0, 10}, {0, 10}});
        LoadStats stats = LoadStats.of(s, 2);
        assertEquals(7, stats.layer());
        assertEquals(40, stats.tokens());
        assertEquals(1, stats.maxOverMean(), 1e-12, "over the whole trace the two are even");
        assertArrayEquals(new double[] {2, 2}, stats.windowMaxOverMean(), 1e-12, "each window one-sided");
        assertArrayEquals(new double[] {1}, stats.windowDrift(), 1e-12);
        assertEquals(1, stats.meanDrift(), 1e-12);
        assertEquals(0, LoadStats.of(s, 1).windowDrift()[0], 1e-12, "steps 1 and 2 alike");
        assertEquals(1, LoadStats.of(s, 3).windowMaxOverMean().length, "a last, shorter window is dropped");
    }
}
