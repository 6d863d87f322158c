package io.moescore.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import org.junit.jupiter.api.Test;

class JobProgressTest {
    @Test
    void lineHasCountsRateEtaAndEveryExecutor() {
        JobSummary sofar = new JobSummary(1200, 3, 600_000, 6.0, List.of(
                new JobSummary.ExecutorLine("0", "h1", "NVIDIA H100 (cuda:0)", 700, 400_000, 5.0),
                new JobSummary.ExecutorLine("1", "h2", "NVIDIA H100 (cuda:0)", 500, 200_000, 5.0)), new long[0][]);
        assertEquals("moescore: progress 3/8 tasks, 1,200 rows, 600,000 tokens, 100,000 tokens/s, ETA 0:00:10; "
                + "executor 0 on NVIDIA H100 (cuda:0): 80,000 tokens/s; executor 1 on NVIDIA H100 (cuda:0): "
                + "40,000 tokens/s", JobProgress.format(3, 8, sofar));
        assertEquals("moescore: progress 0/8 tasks, 0 rows, 0 tokens, 0 tokens/s",
                JobProgress.format(0, 8, new JobSummary(0, 0, 0, 1.0, List.of(), new long[0][])));
    }
}
