package io.moescore.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moescore.spark.MoeScorer;
import io.moescore.spark.StandaloneCluster;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.apache.spark.resource.ResourceProfile;
import org.apache.spark.resource.TaskResourceRequest;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerStageSubmitted;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Stage-level scheduling on a real standalone cluster (one worker offering one gpu address, this JVM the driver):
 * the application's executors hold a GPU but its tasks ask for none by default; {@link MoeScorer} with
 * {@code useStageLevelScheduling} and {@code executorGpuAmount 0} gives only the scoring stage a profile asking one
 * GPU per task. The other stages keep the default profile, and the scores equal the single-process scorer's.
 */
class StageLevelSchedulingTest {
    @TempDir
    Path tmp;

    /** The resource profile id of every submitted stage, by stage id. */
    static final class StageProfiles extends SparkListener {
        final Map<Integer, Integer> byStage = new ConcurrentHashMap<>();

        @Override
        public void onStageSubmitted(SparkListenerStageSubmitted stage) {
            byStage.put(stage.stageInfo().stageId(), stage.stageInfo().resourceProfileId());
        }
    }

    @Test
    @Timeout(value = 150, unit = TimeUnit.SECONDS)
    void onlyTheScoringStageAsksForGpus() throws Exception {
        Map<String, JsonNode> expected = new HashMap<>();
        ObjectMapper json = new ObjectMapper();
        for (String line : Files.readAllLines(SparkTests.scoreLocally(SparkTests.demoInput(), tmp, false, 0))) {
            JsonNode row = json.readTree(line);
            expected.put(row.get("id").asText(), row);
        }
        try (StandaloneCluster cluster = StandaloneCluster.builder().workers(1).gpusPerWorker(1).coresPerWorker(2)
                .start()) {
            SparkSession.Builder b = SparkSession.builder().appName("StageLevelSchedulingTest");
            cluster.applicationConf().forEach(b::config);
            b.config("spark.executor.resource.gpu.amount", "1")   // executors hold the GPU; tasks ask for none ...
                    .config("spark.executor.extraJavaOptions",
                            Files.readString(SparkTests.repoRoot().resolve("conf/jvm-options")).strip())
                    .config("spark.moescore.cpuThreads", "1");
            SparkSession spark = b.getOrCreate();
            try {
                assertEquals(cluster.masterUrl(), spark.sparkContext().master(), "a session on the cluster");
                StageProfiles profiles = new StageProfiles();
                spark.sparkContext().addSparkListener(profiles);

                assertEquals(4950L, spark.range(0, 100, 1, 4).selectExpr("sum(id)").first().getLong(0));
                spark.sparkContext().listenerBus().waitUntilEmpty();
                Map<Integer, Integer> plain = Map.copyOf(profiles.byStage);
                assertFalse(plain.isEmpty());
                plain.values().forEach(p -> assertEquals(ResourceProfile.DEFAULT_RESOURCE_PROFILE_ID(), p, "" + plain));

                MoeScorer scorer = new MoeScorer().setModelPath(SparkTests.demoModel().toString()).setBackend("cpu")
                        .setUseStageLevelScheduling(true).setExecutorGpuAmount(0);   // ... but the scoring tasks do
                List<Row> rows = scorer.transform(spark.read().json(SparkTests.demoInput().toString())
                        .where("id LIKE 'code-%'").repartition(2)).collectAsList();
                spark.sparkContext().listenerBus().waitUntilEmpty();

                assertEquals(8, rows.size());
                for (Row r : rows) {
                    String id = r.getAs("id");
                    assertNull(r.getAs("error"), id);
                    assertEquals(expected.get(id).get("sum_logprob").asDouble(), r.<Double>getAs("sum_logprob"), 0.0, id);
                }
                List<Integer> gpuStages = profiles.byStage.entrySet().stream()
                        .filter(e -> e.getValue() != ResourceProfile.DEFAULT_RESOURCE_PROFILE_ID())
                        .map(Map.Entry::getKey).toList();
                assertEquals(1, gpuStages.size(), "one stage (the scoring) with its own profile: " + profiles.byStage);
                ResourceProfile profile = spark.sparkContext().resourceProfileManager()
                        .resourceProfileFromId(profiles.byStage.get(gpuStages.get(0)));
                TaskResourceRequest gpu = profile.taskResourcesJMap().get("gpu");
                assertEquals(1.0, gpu.amount(), "each scoring task asks one GPU: " + profile);
                assertTrue(profile.executorResourcesJMap().isEmpty(), "the application's executors serve it: " + profile);
            } catch (Throwable t) {
                System.err.println("StageLevelSchedulingTest failed; cluster logs follow\n" + cluster.diagnostics());
                throw t;
            } finally {
                spark.stop();
                SparkSession.clearActiveSession();
                SparkSession.clearDefaultSession();
            }
        }
    }
}
