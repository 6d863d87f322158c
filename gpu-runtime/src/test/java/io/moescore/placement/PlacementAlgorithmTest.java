package io.moescore.placement;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The placement algorithms and the bounds that judge them: every placement within its limits, never below the
 * lower bound; the exact search against brute force; the greedy optimal where pairing heaviest with lightest is;
 * replicas where one expert outweighs a device's share; SmartMoE's keep-on-ties and adopt-only-if-better.
 */
class PlacementAlgorithmTest {
    private static final double EPS = 1e-9;

    /** The optimum without replicas by trying every assignment (small cases). */
    private static double bruteForce(double[] loads, PlacementLimits limits) {
        return bruteForce(loads, limits, 0, new double[limits.devices()], new int[limits.devices()]);
    }

    private static double bruteForce(double[] loads, PlacementLimits limits, int e, double[] tokens, int[] used) {
        if (e == loads.length) {
            return Arrays.stream(tokens).max().orElse(0);
        }
        double best = Double.POSITIVE_INFINITY;
        for (int d = 0; d < limits.devices(); d++) {
            if (used[d] < limits.slots()) {
                tokens[d] += loads[e];
                used[d]++;
                best = Math.min(best, bruteForce(loads, limits, e + 1, tokens, used));
                tokens[d] -= loads[e];
                used[d]--;
            }
        }
        return best;
    }

    private static double[] randomLoads(Random random, int experts, boolean skewed) {
        double[] loads = new double[experts];
        for (int e = 0; e < experts; e++) {
            loads[e] = skewed ? Math.floor(Math.pow(random.nextDouble(), 4) * 1000) : random.nextInt(100);
        }
        return loads;
    }

    @Test
    void exactSearchMatchesBruteForceAndBoundsHold() {
        long seed = System.nanoTime();
        System.out.println("PlacementAlgorithmTest.exactSearchMatchesBruteForceAndBoundsHold seed " + seed);
        Random random = new Random(seed);
        for (int trial = 0; trial < 300; trial++) {
            int devices = 1 + random.nextInt(4);
            int experts = 1 + random.nextInt(8);
            PlacementLimits limits = PlacementLimits.of(devices, random.nextBoolean() ? 0
                    : (experts + devices - 1) / devices + random.nextInt(3), 0, experts);
            double[] loads = randomLoads(random, experts, random.nextBoolean());
            double optimum = bruteForce(loads, limits);
            LoadBounds.Bound best = LoadBounds.best(loads, limits, 1_000_000);
            String where = "seed " + seed + " trial " + trial + " loads " + Arrays.toString(loads) + " " + limits;
            assertTrue(best.exact(), where);
            assertEquals(optimum, best.value(), EPS, where);
            assertTrue(LoadBounds.bound(loads, limits) <= optimum + EPS, where);
            for (PlacementAlgorithm a : PlacementAlgorithm.values()) {
                Placement p = a.place(loads, limits, null);
                p.check(limits);
                assertEquals(experts, p.numExperts(), where);
                assertTrue(p.maxLoad(loads, devices) >= optimum - EPS, a + " below the optimum: " + where);
            }
        }
    }

    @Test
    void greedyIsOptimalWithTwoSlotsPerDeviceAllFilled() {
        // every device holds exactly two experts: pairing the heaviest with the lightest is optimal (exchange
        // argument), and the greedy does exactly that: the first N experts one per device, then each next one
        // onto the device whose first expert is lightest
        long seed = System.nanoTime();
        System.out.println("PlacementAlgorithmTest.greedyIsOptimalWithTwoSlotsPerDeviceAllFilled seed " + seed);
        Random random = new Random(seed);
        for (int trial = 0; trial < 100; trial++) {
            int devices = 1 + random.nextInt(5);
            PlacementLimits limits = new PlacementLimits(devices, 2, 0);
            double[] loads = randomLoads(random, 2 * devices, trial % 2 == 0);
            double[] desc = LoadBounds.descending(loads);
            double pairs = 0;
            for (int i = 0; i < devices; i++) {
                pairs = Math.max(pairs, desc[i] + desc[2 * devices - 1 - i]);
            }
            double greedy = PlacementAlgorithm.GREEDY.place(loads, limits, null).maxLoad(loads, devices);
            String where = "seed " + seed + " loads " + Arrays.toString(loads);
            assertEquals(pairs, greedy, EPS, where);
            assertEquals(bruteForce(loads, limits), greedy, EPS, where);
        }
        double[] loads = {8, 7, 6, 5, 4, 3, 2, 1};
        Placement p = PlacementAlgorithm.GREEDY.place(loads, new PlacementLimits(4, 2, 0), null);
        assertArrayEquals(new double[] {9, 9, 9, 9}, p.deviceLoads(loads, 4), "8+1, 7+2, 6+3, 5+4: the mean");
        assertEquals(9, LoadBounds.simple(loads, new PlacementLimits(4, 2, 0)), EPS, "the mean bound proves it");
    }

    @Test
    void replicasAreNeededWhereOneExpertOutweighsADevicesShare() {
        double[] loads = {12, 2, 2, 2, 2};  // total 20 on 2 devices: 10 each at best, but expert 0 alone is 12
        PlacementLimits single = new PlacementLimits(2, 4, 0);
        PlacementLimits replicated = new PlacementLimits(2, 4, 1);
        assertEquals(12, LoadBounds.best(loads, single, 1000).value(), EPS, "without a replica 12 is optimal");
        assertEquals(12, PlacementAlgorithm.GREEDY.place(loads, single, null).maxLoad(loads, 2), EPS);
        Placement eplb = PlacementAlgorithm.EPLB.place(loads, replicated, null);
        eplb.check(replicated);
        assertArrayEquals(new int[] {0, 1}, eplb.experts()[0], "expert 0 on both devices");
        assertArrayEquals(new double[] {10, 10}, eplb.deviceLoads(loads, 2), "6 + 2 + 2 on each");
        assertEquals(10, LoadBounds.simple(loads, replicated), EPS, "max(20 / 2, 12 / 2)");
        // and the greedy ignores replicas: it cannot go below 12
        assertEquals(12, PlacementAlgorithm.GREEDY.place(loads, replicated, null).maxLoad(loads, 2), EPS);
    }

    @Test
    void replicasGoToTheHottestExpertsOnDistinctDevices() {
        double[] loads = {100, 60, 10, 10, 10, 10};
        PlacementLimits limits = new PlacementLimits(4, 3, 4);
        Placement p = PlacementAlgorithm.EPLB.place(loads, limits, null);
        p.check(limits);
        // replicas: 100 -> 2 copies (50), 60 -> 2 (30), 100 -> 3 (33.3), 33.3 vs 30: 100 -> 4 (25)... one at a time
        assertEquals(4, p.copies(0), p.toString());
        assertEquals(2, p.copies(1), p.toString());
        assertEquals(6 + 4, Arrays.stream(p.experts()).mapToInt(d -> d.length).sum(), "every replica placed");
        assertTrue(p.maxLoad(loads, 4) <= 55 + EPS, Arrays.toString(p.deviceLoads(loads, 4)));
    }

    @Test
    void greedyKeepsTheCurrentDeviceOnTiesAndAdoptsOnlyWhatLowersTheMaximum() {
        double[] even = {5, 5, 5, 5};
        PlacementLimits limits = new PlacementLimits(2, 2, 0);
        Placement current = Placement.of(new int[] {1, 0, 0, 1});
        Placement kept = PlacementAlgorithm.GREEDY.place(even, limits, current);
        assertSame(current, kept, "no plan lowers an even load's maximum: the current one stays");
        double[] skewed = {9, 8, 1, 1};
        Placement moved = PlacementAlgorithm.GREEDY.place(skewed, limits, Placement.of(new int[] {0, 0, 1, 1}));
        assertEquals(10, moved.maxLoad(skewed, 2), EPS, "9+1 | 8+1 instead of 17 | 2");
        // ties: expert 0 (heaviest) finds both devices empty and stays on its current device 1
        Placement tie = PlacementAlgorithm.GREEDY.place(skewed, limits, Placement.of(new int[] {1, 1, 0, 0}));
        assertEquals(1, tie.home(0));
        assertEquals(0, tie.home(1));
        assertEquals(0, tie.moves(Placement.of(new int[] {1, 0, 0, 1})), tie.toString());
    }

    @Test
    void roundRobinIgnoresTheLoads() {
        Placement p = PlacementAlgorithm.ROUND_ROBIN.place(new double[] {9, 1, 1, 1, 1}, new PlacementLimits(2, 3, 0),
                null);
        assertEquals("[[0], [1], [0], [1], [0]]", p.toString());
    }

    @Test
    void limitsRefuseWhatCannotHoldALayer() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> PlacementLimits.of(2, 3, 1, 6));
        assertEquals("2 devices x 3 slots hold fewer than the 6 experts and 1 replicas of a layer", e.getMessage());
        assertEquals(4, PlacementLimits.of(2, 0, 1, 6).slots(), "ceil(7 / 2)");
        e = assertThrows(IllegalArgumentException.class, () -> PlacementLimits.of(2, 0, 5, 4));
        assertTrue(e.getMessage().contains("at most 4 (one copy per device)"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Placement.of(new int[] {0, 0, 0}).check(
                new PlacementLimits(2, 2, 0)));
        assertEquals("device 0 holds more than its 2 slots", e.getMessage());
        assertEquals(PlacementAlgorithm.EPLB, PlacementAlgorithm.named("EPLB"));
        e = assertThrows(IllegalArgumentException.class, () -> PlacementAlgorithm.named("best"));
        assertEquals("'best' is not one of [greedy, eplb, round-robin]", e.getMessage());
    }
}
