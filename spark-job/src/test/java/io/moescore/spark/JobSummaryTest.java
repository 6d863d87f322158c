package io.moescore.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import org.junit.jupiter.api.Test;

/** An executor's busy time counts concurrent tasks once, so its tokens/s is what its GPU did. */
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
