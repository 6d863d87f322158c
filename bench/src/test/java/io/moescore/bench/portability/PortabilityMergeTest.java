package io.moescore.bench.portability;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.moescore.spark.MoeScoreJob;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** Two runs that never ran together (local mode, different labels), merged into one result set and report. */
class PortabilityMergeTest {
    @TempDir
    Path tmp;

    @Test
    @Timeout(value = 180, unit = TimeUnit.SECONDS)
    void mergeCombinesTwoResultSetsIntoOneReport() throws Exception {
        SparkSession spark = SparkSession.builder().master("local[2]").appName("PortabilityMergeTest")
                .config("spark.ui.enabled", "false").getOrCreate();
        try {
            for (String label : List.of("cluster-a", "cluster-b")) {
                PortabilityOptions options = new PortabilityOptions(KernelSuite.quick(), "cpu", "bf16", null, label, 0);
                assertEquals(MoeScoreJob.EXIT_OK, PortabilityJob.run(spark, options, tmp.resolve(label).toString(),
                        "error"), "exit code of " + label);
            }
            // a CSV-only result set merges as well as a Parquet one
            deleteRecursively(tmp.resolve("cluster-b/results.parquet"));
            Path merged = tmp.resolve("merged");
            PortabilityMerge.merge(spark, List.of(tmp.resolve("cluster-a").toString(),
                    tmp.resolve("cluster-b").toString()), merged.toString(), false);

            List<PortabilityRow> rows = ResultStore.readRows(spark, merged.toString());
            Map<String, Long> perRun = rows.stream().collect(Collectors.groupingBy(PortabilityRow::runLabel,
                    Collectors.counting()));
            assertEquals(Set.of("cluster-a", "cluster-b"), perRun.keySet());
            assertEquals(perRun.get("cluster-a"), perRun.get("cluster-b"), "the same suite in both runs: " + perRun);
            assertTrue(rows.stream().anyMatch(r -> "cluster-b".equals(r.runLabel()) && r.speedup24OverDense() != null),
                    "speedups survive the CSV round trip");
            String html = Files.readString(merged.resolve("report.html"));
            assertTrue(html.contains("<tr><td>cluster-a</td>") && html.contains("<tr><td>cluster-b</td>"),
                    "the table has both runs");
            assertTrue(html.contains("cluster-a: CPU") && html.contains("cluster-b: CPU"),
                    "the chart legend has a bar series per run's device");

            IllegalArgumentException notAResultSet = assertThrows(IllegalArgumentException.class,
                    () -> PortabilityMerge.merge(spark, List.of(tmp.toString()), tmp.resolve("m2").toString(), false));
            assertTrue(notAResultSet.getMessage().contains("--inputs " + tmp), notAResultSet.getMessage());

            // the command line (`moescore portability merge`): the job's own --output is not asked of merge; last,
            // as the command stops the session it shares
            assertEquals(MoeScoreJob.EXIT_BAD_INVOCATION, new CommandLine(new PortabilityJob()).execute("--suite",
                    "quick"), "portability without --output");
            assertEquals(MoeScoreJob.EXIT_OK, new CommandLine(new PortabilityJob()).execute("merge", "--inputs",
                    tmp.resolve("cluster-a").toString(), "--output", tmp.resolve("merged-cli").toString()));
            assertTrue(Files.isRegularFile(tmp.resolve("merged-cli/report.html")), "report of the merge command");
        } finally {
            spark.stop();
        }
    }

    private static void deleteRecursively(Path dir) throws Exception {
        try (var files = Files.walk(dir)) {
            files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }
}
