package io.moescore.placement;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/**
 * Re-planning on a load that moves: it follows the hot experts where moves are cheap, and stays with the static plan
 * where a move costs more than it saves.
 */
class DynamicPlannerTest {
    /** 4 experts on 2 devices: experts 0 and 1 hot for 10 steps, then experts 0 and 3. */
    private static LoadSeries shifting() {
        long[][] counts = new long[20][];
        long[] steps = new long[20];
        for (int t = 0; t < 20; t++) {
            steps[t] = 100 + t;
            counts[t] = t < 10 ? new long[] {50, 40, 5, 5} : new long[] {50, 5, 5, 40};
        }
        return new LoadSeries(3, steps, counts);
    }

    @Test
    void followsTheLoadWhereMovesPay() {
        PlacementLimits limits = new PlacementLimits(2, 2, 0);
        DynamicPlanner.Result r = new DynamicPlanner(PlacementAlgorithm.GREEDY, limits, 4, 2, 10).run(shifting());
        assertEquals(16, r.steps());
        // the first plan (steps 0-3) pairs the hot 0 with 3: {0, 3} | {1, 2}, 55 | 45; after the shift that is
        // 90 | 10 for the static plan, while re-planning pairs 0 with 1 or 2 again (55 | 45)
        assertEquals(90 / 50.0, r.staticMaxOverMean()[r.steps() - 1], 1e-12);
        assertEquals(55 / 50.0, r.dynamicMaxOverMean()[r.steps() - 1], 1e-12);
        assertTrue(r.adopted() >= 1 && r.moves() >= 2, r.toString());
        assertTrue(r.gain() > 1.1, "gain " + r.gain());
        assertEquals(r.staticCost(), sum(r.staticMaxOverMean()) * 50, 1e-9, "the mean device load is 50 every step");
    }

    @Test
    void anExpensiveMoveIsNotMade() {
        PlacementLimits limits = new PlacementLimits(2, 2, 0);
        long[][] counts = new long[12][];
        long[] steps = new long[12];
        for (int t = 0; t < 12; t++) {
            steps[t] = t;
            counts[t] = t < 4 ? new long[] {50, 5, 5, 40} : new long[] {50, 5, 40, 5};
        }
        LoadSeries s = new LoadSeries(0, steps, counts);
        DynamicPlanner.Result cheap = new DynamicPlanner(PlacementAlgorithm.GREEDY, limits, 4, 4, 1).run(s);
        DynamicPlanner.Result dear = new DynamicPlanner(PlacementAlgorithm.GREEDY, limits, 4, 4, 1e9).run(s);
        // the first plan (steps 0-3, 0 and 3 hot) is {0, 2} | {1, 3}: 55 | 45, then 90 | 10 once 0 and 2 are hot
        assertEquals(0, dear.adopted(), dear.toString());
        assertArrayEquals(dear.staticMaxOverMean(), dear.dynamicMaxOverMean(), 1e-12, "never moved: static");
        assertTrue(cheap.adopted() >= 1, cheap.toString());
        assertTrue(cheap.gain() > 1, "gain " + cheap.gain());
        assertTrue(cheap.moves() >= 2, "a swap moves two experts: " + cheap.moves());
    }

    private static double sum(double[] v) {
        double s = 0;
        for (double x : v) {
            s += x;
        }
        return s;
    }
}
