package io.moescore.spark;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * An executor's busy time counts concurrent tasks once, so its tokens/s is what its GPU did; routing entries per
 * device summed over the executors' engines.
 */
class JobSummaryTest {
    private static TaskStats task(int partition, String executor, long tokens, long startMillis, long endMillis) {
        return new TaskStats(0, partition, 0, executor, "h", "gpu", 1, 0, tokens, startMillis * 1_000_000,
                endMillis * 1_000_000, new long[0][]);
    }

    @Test
    void concurrentTasksOfOneExecutorCountTheirOverlapOnce() {
        JobSummary s = JobSummary.of(List.of(task(0, "0", 1000, 0, 1000), task(1, "0", 1000, 500, 1500),
                task(2, "0", 500, 3000, 3500), task(3, "1", 2000, 0, 1000)), 4.0);
        JobSummary.ExecutorLine zero = s.executors().get(0);
        assertEquals(2.0, zero.busySeconds(), 1e-9);   // [0, 1.5) and [3, 3.5)
        assertEquals(1250.0, zero.tokensPerSecond(), 1e-9);
        assertEquals(1.0, s.executors().get(1).busySeconds(), 1e-9);
    }

    private static TaskStats spread(int partition, int attempt, String engine, long[] before, long[] after) {
        return new TaskStats(0, partition, attempt, engine.split(" ")[0], "h", "2 devices", 1, 0, 10, 0, 1,
                new long[0][], 0, new TaskStats.EngineEntries(engine, before, after));
    }

    /**
     * Routing entries per device index, as score-local's summary gives them: per engine (executor and first device)
     * its latest counts less its earliest, whatever its tasks' overlap and attempts, summed over engines.
     */
    @Test
    void entriesPerDeviceSumEachEnginesCountsOverTheJob() {
        List<TaskStats> stats = List.of(
                // executor 0, engine on devices 0-1: two tasks at once, then a retried attempt of partition 1
                spread(0, 0, "0 device 0", new long[] {0, 0}, new long[] {30, 50}),
                spread(1, 0, "0 device 0", new long[] {10, 20}, new long[] {40, 60}),
                spread(1, 1, "0 device 0", new long[] {40, 60}, new long[] {44, 61}),
                // executor 0's second engine (devices 2-3), and executor 1's engine, loaded by an earlier job
                spread(2, 0, "0 device 2", new long[] {0, 0}, new long[] {7, 3}),
                spread(3, 0, "1 device 0", new long[] {100, 100}, new long[] {105, 120}),
                task(4, "2", 10, 0, 1));  // an engine on one device: no counts
        JobSummary s = JobSummary.of(stats, 1.0);
        assertArrayEquals(new long[] {44 + 7 + 5, 61 + 3 + 20}, s.entriesPerDevice());
        com.fasterxml.jackson.databind.JsonNode json = s.withSettings(io.moescore.score.ScoreSettings.DEFAULTS)
                .toJson().get("entries_per_device");
        assertEquals("[56,84]", json.toString());
        assertFalse(JobSummary.of(List.of(task(0, "0", 10, 0, 1)), 1.0).toJson().has("entries_per_device"));
        java.io.ByteArrayOutputStream printed = new java.io.ByteArrayOutputStream();
        s.print(new java.io.PrintStream(printed, true));
        assertTrue(printed.toString().contains("routed entries per device: 56, 84"), printed.toString());
    }

    @Test
    void unionOfNestedAndTouchingIntervals() {
        assertEquals(10, JobSummary.unionNanos(List.of(new long[] {0, 10}, new long[] {2, 5}, new long[] {10, 10})));
        assertEquals(7, JobSummary.unionNanos(List.of(new long[] {5, 8}, new long[] {0, 4})));
    }

    @Test
    void batchDependentRoutingIsFlaggedInTheSummary() {
        JobSummary s = JobSummary.of(List.of(task(0, "0", 10, 0, 1)), 1.0);
        io.moescore.score.ScoreSettings blocks = io.moescore.score.ScoreSettings.DEFAULTS.with(
                io.moescore.score.ScoreSettings.ROUTING, io.moescore.routing.RoutingSpec.parse("batch-top-k:2:64"));
        assertEquals(false, s.withSettings(blocks).toJson().has("batch_dependent_scores"));
        com.fasterxml.jackson.databind.node.ObjectNode json = s.withSettings(blocks.with(
                io.moescore.score.ScoreSettings.ROUTING, io.moescore.routing.RoutingSpec.parse("batch-top-k:2")))
                .toJson();
        assertEquals(true, json.get("batch_dependent_scores").asBoolean());
        assertEquals("batch-top-k:2", json.get("settings").get("routing").asText());
    }
}
