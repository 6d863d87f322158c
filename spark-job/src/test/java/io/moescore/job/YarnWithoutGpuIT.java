package io.moescore.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A YARN cluster without the GPU resource type (one NodeManager, no yarn.resource-types): submitting the scoring job
 * with GPUs (submit-scripts/examples/yarn.sh asks one per executor) is refused before anything is submitted, in
 * seconds, with exit 2 and a message naming {@code yarn.io/gpu}; without it YARN would accept the application and
 * its master would fail asking for executors. Needs the packaged build, as {@link YarnScoreJobIT}.
 */
@IntegrationTest
class YarnWithoutGpuIT {
    @TempDir
    Path tmp;

    @Test
    @Timeout(value = 180, unit = TimeUnit.SECONDS)
    void gpusOnAClusterWithoutTheGpuResourceTypeAreRefusedNamingIt() throws Exception {
        try (YarnCluster cluster = YarnCluster.withoutHdfs(tmp.resolve("no-gpu"), 1, 0)) {
            long t0 = System.nanoTime();
            Path log = tmp.resolve("yarn-no-gpu.log");
            Map<String, String> env = cluster.clientEnv(new TreeMap<>(System.getenv()));
            env.putAll(Map.of("INPUT", SparkTests.demoInput().toString(), "OUTPUT", tmp.resolve("never").toString(),
                    "MODEL", SparkTests.demoModel().toString(), "EXECUTORS", "1"));
            int exit = SubmittedJobs.runScript(List.of(SparkTests.repoRoot().resolve("submit-scripts/examples/yarn.sh")
                    .toString()), env, log, Duration.ofSeconds(60), () -> "", () -> { });
            System.out.printf("yarn.sh on a cluster without yarn.io/gpu exited %d after %.1f s%n", exit,
                    (System.nanoTime() - t0) / 1e9);
            String text = Files.readString(log);
            System.out.print(text);
            assertEquals(2, exit, "exit code\n" + text);
            assertTrue(text.contains("moescore: the YARN cluster has no resource type yarn.io/gpu")
                    && text.contains("spark.executor.resource.gpu.amount=1"), "the message names the resource and "
                    + "the setting asking for it:\n" + text);
            assertEquals(List.of(), cluster.applications(), "nothing was submitted");
        }
    }
}
